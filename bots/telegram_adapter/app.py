"""run_telegram: the PTB Application's life around a TelegramBot, sharing the caller's event loop.

Long polling by default, the webhook server when TELEGRAM_WEBHOOK_URL is set. Runs until cancelled, then
stops taking updates, lets replies in flight finish (briefly), and closes everything.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder

from bots.telegram_adapter.handlers import TelegramBot
from bots.telegram_adapter.webhook import WebhookServer
from core import Assistant, ConfigError, Settings, secrets_redacted

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message"]
POLL_TIMEOUT = dtm.timedelta(seconds=30)  # long polling: Telegram holds getUpdates until an update or this

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


def file_base_url(base_url: str) -> str:
    """The file-download base next to a Bot API base: `http://host/bot` -> `http://host/file/bot`."""
    head, found, tail = base_url.rpartition("/bot")
    return f"{head}/file/bot{tail}" if found else base_url


def build_application(settings: Settings) -> AnyApplication:
    """The PTB Application: concurrent updates (the core orders each conversation), our base URLs."""
    if settings.telegram_bot_token is None:
        raise ConfigError("TELEGRAM_BOT_TOKEN", "is not set")
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .concurrent_updates(settings.telegram_concurrent_updates)
    )
    if settings.telegram_api_base_url:
        builder = builder.base_url(settings.telegram_api_base_url).base_file_url(
            file_base_url(settings.telegram_api_base_url)
        )
    if settings.telegram_webhook_url:
        builder = builder.updater(None)  # updates arrive through our WebhookServer instead
    return builder.build()


async def run_telegram(
    assistant: Assistant, settings: Settings, *, clock: Callable[[], float] = time.monotonic
) -> None:
    """Serve Telegram until cancelled (SIGTERM cancels the task in `parley run`).

    `clock` (seconds) paces the webhook's refusal warnings; tests pass their own.
    """
    if settings.telegram_bot_token is None:
        raise ConfigError("TELEGRAM_BOT_TOKEN", "is not set")
    # Every log line of every library, the token in any form (whole, percent-encoded, its secret half).
    with secrets_redacted(settings.telegram_bot_token.get_secret_value()):
        await _serve(assistant, settings, clock)


async def _serve(assistant: Assistant, settings: Settings, clock: Callable[[], float]) -> None:
    application = build_application(settings)
    bot = TelegramBot(assistant, settings)
    bot.install(application)
    try:
        await application.initialize()  # getMe
    except BaseException as exc:
        await application.bot.shutdown()  # a half-initialised bot still holds open HTTP clients
        if isinstance(exc, InvalidToken):  # its message holds the token: never shown, never chained
            raise ConfigError("TELEGRAM_BOT_TOKEN", "was refused by Telegram") from None
        raise
    try:
        try:
            await application.bot.set_my_commands(bot.commands())
        except TelegramError as exc:  # the command menu is a convenience; the bot works without it
            log.warning("telegram: setMyCommands failed (%s)", type(exc).__name__)
        await application.start()
        try:
            await _receive(application, assistant, settings, clock)
        finally:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            await bot.drain(settings.shutdown_grace_seconds)
            await application.stop()
    finally:
        await application.shutdown()


async def _receive(
    application: AnyApplication, assistant: Assistant, settings: Settings, clock: Callable[[], float]
) -> None:
    """Feed updates to the application until cancelled: the webhook server, or long polling."""
    username = application.bot.username
    url = settings.telegram_webhook_url
    if url is None:
        await _poll_as_leader(application, assistant, settings)
        return
    given = settings.telegram_webhook_secret
    secret = given.get_secret_value() if given is not None else secrets.token_urlsafe(32)
    server = WebhookServer(
        application.update_queue,
        application.bot,
        path=urlsplit(url).path or "/",
        secret=secret,
        listen=settings.telegram_webhook_listen,
        port=settings.telegram_webhook_port,
        on_rejected=assistant.count_webhook_rejected,
        clock=clock,
    )
    async with server:
        try:
            await application.bot.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
        except BadRequest:  # Telegram's words may quote the URL, and its path may hold a secret
            raise ConfigError("TELEGRAM_WEBHOOK_URL", "was refused by Telegram (a public HTTPS URL?)") from None
        # Not the URL: operators often put secrets in its path.
        log.info(
            "telegram: @%s receives updates by webhook on %s:%d",
            username,
            settings.telegram_webhook_listen,
            settings.telegram_webhook_port,
        )
        await asyncio.Event().wait()


async def _poll_as_leader(application: AnyApplication, assistant: Assistant, settings: Settings) -> None:
    """Long polling by one process only: Telegram allows one getUpdates caller per token (409 Conflict).

    On PostgreSQL the other processes wait for the poller lock and take over if the poller's database
    session ends (its process died); a poller that loses its lock stops polling and waits again.
    """
    updater = application.updater
    assert updater is not None
    while True:
        log.info("telegram: waiting to be the one process polling for updates")
        retry = settings.poll_leader_retry_seconds
        async with assistant.leadership("telegram-poller", retry_seconds=retry) as lease:
            await updater.start_polling(timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES)
            log.info("telegram: @%s is polling for updates", application.bot.username)
            try:
                await lease.lost()
            finally:  # stop before the lock goes, so that the next poller never meets this one
                if updater.running:
                    await updater.stop()
