"""The webhook endpoint: an aiohttp server taking Telegram's update pushes into the application's queue.

Every request must carry the secret token (X-Telegram-Bot-Api-Secret-Token, set with setWebhook); others
get 403 and never reach a handler. Refusals are counted (`on_rejected`, a metric) and logged at most once
a minute, so a flood of forged pushes cannot flood the log. aiohttp rather than PTB's tornado-based
webhook: one less dependency.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from aiohttp import web
from telegram import Bot, Update

from core import ConfigError

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024  # an update is JSON about one message; far below this
REJECTED_LOG_INTERVAL_SECONDS = 60.0  # one warning line per this, however many requests are refused


def _nothing() -> None:
    pass


class WebhookServer:
    """`async with WebhookServer(queue, bot, path=, secret=, listen=, port=)`: serves until the block ends."""

    def __init__(
        self,
        queue: asyncio.Queue[object],
        bot: Bot,
        *,
        path: str,
        secret: str,
        listen: str,
        port: int,
        on_rejected: Callable[[], None] = _nothing,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._bot = bot
        self._path = path or "/"
        self._secret = secret.encode()
        self._listen = listen
        self._port = port
        self._runner: web.AppRunner | None = None
        self._on_rejected = on_rejected
        self._clock = clock
        self.rejected = 0  # requests without the right secret, for logs and tests
        self._unlogged = 0  # refused since the last warning line
        self._logged_at: float | None = None

    def __repr__(self) -> str:  # never the secret
        return f"WebhookServer(listen={self._listen!r}, port={self._port}, path={self._path!r})"

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=MAX_UPDATE_BYTES)
        app.router.add_post(self._path, self._receive)
        # No access log: operators often put secrets in webhook paths.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._listen, self._port).start()
        except OSError as exc:  # port taken, address not ours: an operator's fix, not a crash
            await self._runner.cleanup()
            raise ConfigError("TELEGRAM_WEBHOOK_PORT", f"cannot be listened on ({exc.strerror})") from None
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        if not self._has_secret(request):
            self._refused()
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), self._bot)
        except Exception:  # any malformed body: Telegram never sends one, so refuse it and move on
            log.warning("webhook request with a malformed update refused")
            return web.Response(status=400)
        await self._queue.put(update)
        return web.Response()

    def _has_secret(self, request: web.Request) -> bool:
        # aiohttp decodes header bytes as UTF-8 with surrogateescape: bytes that are not UTF-8 become lone
        # surrogates, which encode() refuses. Such a header cannot be the secret (A-Z a-z 0-9 _ -).
        try:
            given = request.headers.get(SECRET_HEADER, "").encode()
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(given, self._secret)

    def _refused(self) -> None:
        self.rejected += 1
        self._unlogged += 1
        self._on_rejected()
        now = self._clock()
        if self._logged_at is None or not 0 <= now - self._logged_at < REJECTED_LOG_INTERVAL_SECONDS:
            log.warning(
                "webhook: %d request(s) without the right secret token refused (logged at most once a minute)",
                self._unlogged,
            )
            self._logged_at, self._unlogged = now, 0
