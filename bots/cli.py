"""The `parley` command and the only composition root: settings in, assistant and adapters built here.

parley run [telegram|discord]   every adapter whose token is set, or the one named
parley chat                     a terminal conversation through the same core
parley db upgrade               bring the database schema to the newest revision
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, Literal

from core import (
    Assistant,
    ConfigError,
    DatabaseSettings,
    Metrics,
    ParleyError,
    Settings,
    configure_logging,
    load_settings,
    open_assistant,
    secrets_redacted,
    serve_metrics,
    upgrade_database,
)

log = logging.getLogger("parley")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="An LLM chat bot for Telegram and Discord.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the bot (every adapter whose token is set, or the one named)")
    run.add_argument("platform", nargs="?", choices=("telegram", "discord"))
    commands.add_parser("chat", help="talk to the model in this terminal")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply the migrations")
    return parser


def _configure_logging(
    level: str, *, quiet: bool, log_format: Literal["text", "json"] = "text", log_content: bool = False
) -> None:
    # chat: stderr is for the user. json: one object per line (core/logs.py), for log shippers.
    level_number = logging.ERROR if quiet and level != "DEBUG" else level
    configure_logging(level_number, log_format=log_format, log_content=log_content)
    # httpx logs every request URL at INFO; the request body and headers never, but one line per call is noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # The MCP SDK: httpx2 logs each request URL (which may hold a token); the SDK's own errors may quote what
    # a server sent (tool output). core.tools.mcp logs one line per server failure, enough unless LOG_CONTENT.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    logging.getLogger("mcp").setLevel(logging.WARNING if log_content else logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "db":
            db_settings = load_settings(DatabaseSettings)
            _configure_logging(db_settings.log_level, quiet=False, log_format=db_settings.log_format)
            _run_async(upgrade_database(db_settings))
            print("database is up to date")
            return 0
        settings = load_settings(Settings)
        _configure_logging(
            settings.log_level,
            quiet=args.command == "chat",
            log_format=settings.log_format,
            log_content=settings.log_content,
        )
        with secrets_redacted(*_secrets(settings)):
            if args.command == "chat":
                return _run_async(_chat(settings))
            return _run_async(_serve(settings, args.platform))
    except ConfigError as exc:
        print(f"parley: error: {exc.setting} {exc.problem}", file=sys.stderr)
        return 2
    except ParleyError as exc:  # e.g. the database is unreachable at start; str() never holds a secret
        print(f"parley: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _secrets(settings: Settings) -> list[str]:
    """Every secret setting, kept out of all log lines (core/logs.py), whichever library would log it."""
    values = (
        settings.llm_api_key,
        settings.telegram_bot_token,
        settings.telegram_webhook_secret,
        settings.discord_bot_token,
        settings.redis_url,
    )
    return [value.get_secret_value() for value in values if value is not None]


def _run_async(coro: Coroutine[Any, Any, int | None]) -> int:
    """Run `coro`; SIGTERM cancels it like Ctrl-C does, so every `async with` closes its resources."""

    async def guarded() -> int | None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await coro
        except asyncio.CancelledError:
            return 0

    return asyncio.run(guarded()) or 0


async def _chat(settings: Settings) -> int:
    from bots.terminal import run_terminal

    async with open_assistant(settings) as assistant:
        return await run_terminal(assistant, settings)


async def _serve(settings: Settings, platform: str | None) -> int:
    wanted = (
        [platform]
        if platform
        else [
            name
            for name, token in (("telegram", settings.telegram_bot_token), ("discord", settings.discord_bot_token))
            if token is not None
        ]
    )
    if not wanted:
        raise ConfigError("TELEGRAM_BOT_TOKEN", "is not set (nor DISCORD_BOT_TOKEN): no adapter to run")
    for name in wanted:
        if name == "telegram" and settings.telegram_bot_token is None:
            raise ConfigError("TELEGRAM_BOT_TOKEN", "is not set")
        if name == "discord" and settings.discord_bot_token is None:
            raise ConfigError("DISCORD_BOT_TOKEN", "is not set")
    # PTB >= 22.2 reports RetryAfter as a timedelta with this opt-in (as the tests run it) instead of warning.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    # Imported here: `parley chat` and `parley db` need neither platform library.
    from bots.discord_bot import run_discord
    from bots.telegram_bot import run_telegram

    runners: dict[str, Callable[[Assistant, Settings], Coroutine[Any, Any, None]]] = {
        "telegram": run_telegram,
        "discord": run_discord,
    }
    metrics = Metrics() if settings.metrics_port is not None else None
    async with (
        open_assistant(settings, metrics=metrics) as assistant,
        _metrics_endpoint(assistant, metrics, settings),
    ):
        log.info("serving %s", ", ".join(wanted))
        try:
            async with asyncio.TaskGroup() as group:
                for name in wanted:
                    group.create_task(runners[name](assistant, settings))
        except ExceptionGroup as failures:
            # An adapter refusing to start (bad token, missing intent) is a one-line answer, not a traceback.
            first = next((e for e in failures.exceptions if isinstance(e, ParleyError)), None)
            if first is None:
                raise
            raise first from None
    return 0


@contextlib.asynccontextmanager
async def _metrics_endpoint(assistant: Assistant, metrics: Metrics | None, settings: Settings) -> AsyncIterator[None]:
    """METRICS_PORT: /livez, /readyz, /healthz and /metrics for as long as the assistant lives; nothing when unset."""
    port = settings.metrics_port
    if metrics is None or port is None:
        yield
        return
    async with serve_metrics(metrics, assistant.health, host=settings.metrics_listen, port=port) as bound:
        log.info("metrics and probes on port %d of %s (/metrics, /livez, /readyz)", bound, settings.metrics_listen)
        yield


if __name__ == "__main__":
    raise SystemExit(main())
