"""The webhook endpoint: an aiohttp server taking Telegram's update pushes into the application's queue.

Every request must carry the secret token (X-Telegram-Bot-Api-Secret-Token, set with setWebhook); others
get 403 and never reach a handler. aiohttp rather than PTB's tornado-based webhook: one less dependency.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from types import TracebackType
from typing import Self

from aiohttp import web
from telegram import Bot, Update

from core import ConfigError

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024  # an update is JSON about one message; far below this


class WebhookServer:
    """`async with WebhookServer(queue, bot, path=, secret=, listen=, port=)`: serves until the block ends."""

    def __init__(
        self, queue: asyncio.Queue[object], bot: Bot, *, path: str, secret: str, listen: str, port: int
    ) -> None:
        self._queue = queue
        self._bot = bot
        self._path = path or "/"
        self._secret = secret.encode()
        self._listen = listen
        self._port = port
        self._runner: web.AppRunner | None = None
        self.rejected = 0  # requests without the right secret, for logs and tests

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
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            self.rejected += 1
            log.warning("webhook request without the right secret token refused")
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), self._bot)
        except Exception:  # any malformed body: Telegram never sends one, so refuse it and move on
            log.warning("webhook request with a malformed update refused")
            return web.Response(status=400)
        await self._queue.put(update)
        return web.Response()
