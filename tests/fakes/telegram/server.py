"""FakeTelegram: an aiohttp Bot API server on 127.0.0.1 for end-to-end tests of a real PTB bot.

Speaks `POST /bot<token>/<method>` (query, urlencoded, multipart or JSON), long polling, webhook pushes and
`GET /file/bot<token>/<path>`; records every call. The token only ever appears in URL paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
from aiohttp import web

from .limits import RateLimiter, RateLimits
from .methods import UPLOAD_MAX_BYTES, BotApi
from .objects import (
    ApiError,
    Call,
    ChatAction,
    Draft,
    FakeUser,
    StoredMessage,
    UploadedFile,
    WebhookConfig,
)
from .params import Params, decode_params
from .state import World
from .users import ChatRef, UserSide

T = TypeVar("T")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_POLL_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)


class FakeTelegram(UserSide):
    """`async with FakeTelegram(token=...) as tg:` then point PTB at `tg.base_url` / `tg.base_file_url`.

    Test-side helpers make users, chats and topics, inject updates (`user_sends`), and read what the bot
    did (`messages`, `drafts`, `actions`, `calls`, `count_429`, `all_sent_text`, `wait_for`).
    """

    def __init__(
        self,
        *,
        token: str,
        bot_username: str = "parley_test_bot",
        bot_name: str = "Parley",
        limits: RateLimits | None = None,
        deliver_webhooks: bool = True,
        webhook_retry_seconds: float = 0.2,
    ) -> None:
        self._token = token
        prefix = token.partition(":")[0]
        self.bot = FakeUser(int(prefix) if prefix.isdigit() else 424_242, bot_name, bot_username, is_bot=True)
        self.world = World(self.bot)
        self.limiter = RateLimiter(limits or RateLimits(), clock=time.monotonic)
        self.api = BotApi(self.world, self.limiter)
        self.deliver_webhooks = deliver_webhooks
        self.webhook_retry_seconds = webhook_retry_seconds
        self.calls: list[Call] = []
        self.downloads: list[str] = []  # file_path of every file the bot fetched from /file/bot<token>/
        self.count_429 = 0
        self.internal_errors: list[BaseException] = []  # bugs of the fake itself (answered with 500)
        self._failures: dict[str, list[tuple[ApiError, Callable[[Mapping[str, Any]], bool]]]] = {}
        self._poll_generation = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._pushing = 0
        self.webhook_peak_in_flight = 0  # the most webhook pushes that were under way at once
        self.port = 0

    def __repr__(self) -> str:
        return f"FakeTelegram(port={self.port}, bot=@{self.bot.username})"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=UPLOAD_MAX_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # No access log: it would print request paths, and those hold the token.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        self.world.notify()  # held getUpdates answer [] at once
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ------------------------------------------------------------------ HTTP

    async def _handle_api(self, request: web.Request) -> web.Response:
        raw_method = request.match_info["method"]
        entry = self.api.handlers.get(raw_method.lower())
        name = entry[0] if entry else ("getUpdates" if raw_method.lower() == "getupdates" else raw_method)
        call = Call(name, {}, time.monotonic())
        self.calls.append(call)
        try:
            call.params = decode_params(await _read_params(request))
            if not hmac.compare_digest(request.match_info["token"].encode(), self._token.encode()):
                raise ApiError(401, "Unauthorized")
            pending = self._failures.get(name)
            if pending and pending[0][1](call.params):
                error, _ = pending.pop(0)
                self._hold_on_injected(error, call.params)
                raise error
            if name == "getUpdates":
                result: Any = await self._get_updates(Params(call.params), request)
            elif entry is None:
                raise ApiError(404, "Not Found")
            else:
                result = entry[1](Params(call.params))
        except ApiError as error:
            call.status, call.description = error.code, error.description
            self.count_429 += error.code == 429
            self.world.notify()
            return web.json_response(error.to_api(), status=error.code)
        except Exception as bug:  # a bug in the fake must fail the test visibly, not hang the bot
            self.internal_errors.append(bug)
            call.status, call.description = 500, f"fake internal error: {type(bug).__name__}"
            return web.json_response(
                {"ok": False, "error_code": 500, "description": "Internal Server Error"}, status=500
            )
        call.status, call.result = 200, result
        if name == "setWebhook":
            self._start_webhook_delivery()
        self.world.notify()
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if not hmac.compare_digest(request.match_info["token"].encode(), self._token.encode()):
            raise web.HTTPNotFound()
        for stored in self.world.files.values():
            if stored.file_path == request.match_info["path"]:
                self.downloads.append(stored.file_path)
                return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")
        raise web.HTTPNotFound()

    async def _get_updates(self, p: Params, request: web.Request) -> list[dict[str, Any]]:
        """Long polling: answer at once if updates are pending, else hold until one is queued or timeout."""
        if self.world.webhook.url:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        limit = min(100, max(1, p.opt_integer("limit") or 100))
        timeout = max(0.0, float(p.get("timeout") or 0))
        allowed = p.get("allowed_updates")
        if isinstance(allowed, list):
            self.world.allowed_updates = [str(kind) for kind in allowed] or None
        offset = p.opt_integer("offset")
        if offset is not None:
            self.world.confirm_updates(offset)
        self._poll_generation += 1
        mine = self._poll_generation
        self.world.notify()  # an older held request now ends with 409, as on Telegram
        deadline = time.monotonic() + timeout
        while True:
            changed = self.world.change_event
            if self._closing:
                return []
            if mine != self._poll_generation:
                if request.transport is None or request.transport.is_closing():
                    raise ApiError(499, "client closed the request")  # nobody to answer: not an error
                raise ApiError(409, _POLL_CONFLICT)
            pending = self.world.pending_updates()
            remaining = deadline - time.monotonic()
            if pending or remaining <= 0:
                return list(pending[:limit])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    def _start_webhook_delivery(self) -> None:
        idle = self._webhook_task is None or self._webhook_task.done()
        if self.deliver_webhooks and self.world.webhook.url and idle:
            self._webhook_task = asyncio.create_task(self._deliver_webhooks())

    async def _deliver_webhooks(self) -> None:
        """POST pending updates to the webhook, several at once, retrying failures, like Telegram.

        Up to `max_connections` pushes are in flight together (https://core.telegram.org/bots/api#setwebhook:
        "The maximum allowed number of simultaneous HTTPS connections to the webhook for update delivery,
        1-100. Defaults to 40."), so updates can reach the bot out of order; each is confirmed on its own 2xx.
        """
        webhook = self.world.webhook
        in_flight: dict[int, asyncio.Task[None]] = {}
        try:
            while not self._closing and webhook.url:
                changed = self.world.change_event
                for update_id in [key for key, task in in_flight.items() if task.done()]:
                    del in_flight[update_id]
                for update in self.world.pending_updates():
                    if len(in_flight) >= max(1, webhook.max_connections):
                        break
                    if update["update_id"] not in in_flight:
                        in_flight[update["update_id"]] = asyncio.create_task(self._push(update))
                await changed.wait()
        finally:
            for task in in_flight.values():
                task.cancel()
            await asyncio.gather(*in_flight.values(), return_exceptions=True)

    async def _push(self, update: dict[str, Any]) -> None:
        """One webhook push; a failure waits `webhook_retry_seconds` before the update may go again."""
        assert self._session is not None
        webhook = self.world.webhook
        headers = {SECRET_HEADER: webhook.secret_token} if webhook.secret_token else {}
        self._pushing += 1
        self.webhook_peak_in_flight = max(self.webhook_peak_in_flight, self._pushing)
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with self._session.post(webhook.url, json=update, headers=headers, timeout=timeout) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        finally:
            self._pushing -= 1
        webhook.deliveries.append((update["update_id"], status))
        if 200 <= status < 300:
            webhook.delivered_at[update["update_id"]] = time.monotonic()
            self.world.updates = [u for u in self.world.updates if u is not update]
        else:
            await asyncio.sleep(self.webhook_retry_seconds)
        self.world.notify()

    # ------------------------------------------------------------------ configuration and faults

    @property
    def limits(self) -> RateLimits:
        return self.limiter.limits

    @limits.setter
    def limits(self, limits: RateLimits) -> None:
        self.limiter.reset(limits)

    @property
    def draft_error(self) -> str | None:
        """When set (e.g. "Bad Request: TEXTDRAFT_PEER_INVALID"), every sendMessageDraft gets this 400."""
        return self.api.draft_error

    @draft_error.setter
    def draft_error(self, description: str | None) -> None:
        self.api.draft_error = description

    def fail_next(
        self,
        method: str,
        code: int = 400,
        description: str = "Bad Request: injected failure",
        *,
        retry_after: int | None = None,
        when: Callable[[Mapping[str, Any]], bool] = lambda params: True,
    ) -> None:
        """The next call of `method` (canonical name, e.g. "editMessageText") whose parameters pass `when`
        gets this error instead."""
        self._failures.setdefault(method, []).append((ApiError(code, description, retry_after=retry_after), when))

    def _hold_on_injected(self, error: ApiError, params: Mapping[str, Any]) -> None:
        """An injected 429 holds its chat like a real one: calls before retry_after are refused too."""
        if error.retry_after is None:
            return
        with contextlib.suppress(ApiError):
            self.limiter.hold(self.world.chat(params.get("chat_id")).id, error.retry_after)

    @property
    def webhook(self) -> WebhookConfig:
        return self.world.webhook

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return list(self.world.pending_updates())

    @property
    def polls_received(self) -> int:
        """getUpdates requests received so far: a test waits for a long poll to be held (`wait_for`)."""
        return self._poll_generation

    # ------------------------------------------------------------------ reading what the bot did

    def messages(self, chat: ChatRef, *, thread_id: int | None = None) -> list[StoredMessage]:
        """The bot's messages in `chat` (optionally one topic), in order, deleted ones flagged."""
        chat_id = self._chat(chat).id
        return [
            m
            for m in self.world.chat_messages[chat_id]
            if m.from_bot and (thread_id is None or m.message_thread_id == thread_id)
        ]

    def chat_history(self, chat: ChatRef) -> list[StoredMessage]:
        """Every message of `chat`, users' and the bot's, in order."""
        return list(self.world.chat_messages[self._chat(chat).id])

    def drafts(self, chat: ChatRef) -> list[Draft]:
        chat_id = self._chat(chat).id
        return [d for d in self.world.drafts if d.chat_id == chat_id]

    def actions(self, chat: ChatRef) -> list[ChatAction]:
        chat_id = self._chat(chat).id
        return [a for a in self.world.actions if a.chat_id == chat_id]

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def errors(self) -> list[Call]:
        """Calls answered with an error (0 = still pending; 499 = a long poll its client had left)."""
        return [call for call in self.calls if call.status not in (0, 200, 499)]

    def all_sent_text(self) -> list[str]:
        """Every string the bot sent in any parameter (texts, captions, drafts, commands, file names...)."""
        found: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, UploadedFile):
                found.extend(s for s in (value.filename, value.content_type) if s)
            elif isinstance(value, Mapping):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list | tuple):
                for item in value:
                    walk(item)

        for call in self.calls:
            walk(call.params)
        return found

    async def wait_for(self, predicate: Callable[[], T | None], timeout_seconds: float = 5.0) -> T:
        """Wait until `predicate()` is truthy (checked after every change) and return its value."""
        try:
            async with asyncio.timeout(timeout_seconds):
                while True:
                    changed = self.world.change_event
                    value = predicate()
                    if value:
                        return value
                    await changed.wait()
        except TimeoutError:
            recent = ", ".join(f"{c.method}->{c.status} {c.description or ''}".strip() for c in self.calls[-8:])
            raise TimeoutError(f"condition not met within {timeout_seconds} s; last calls: {recent}") from None


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Parameters from the query string plus a JSON, urlencoded or multipart body, as Telegram accepts."""
    values: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return values
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON request body") from None
        if isinstance(body, dict):
            values.update(body)
    elif request.content_type.startswith("multipart/"):
        # Read parts ourselves: request.post() spools uploads to temp files nobody closes.
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                content_type = part.headers.get(aiohttp.hdrs.CONTENT_TYPE)
                values[part.name] = UploadedFile(part.filename, content_type, bytes(await part.read()))
            else:
                values[part.name] = await part.text()
    else:
        form = await request.post()
        values.update({key: value for key, value in form.items() if isinstance(value, str)})
    return values
