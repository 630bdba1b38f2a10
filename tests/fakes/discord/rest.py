"""REST v10 of the fake: the recording/auth/rate-limit middleware, body parsing, and user/channel/message routes.

Interaction, command and webhook routes live in interactions.py; both answer errors in Discord's JSON shape.
"""

from __future__ import annotations

import email.parser
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import Message as MimeHeaders
from typing import Any

from aiohttp import web

from .gateway import Gateway
from .messages import Messages
from .models import JSON, ChannelType, Intent, RestCall, StoredMessage, Upload
from .ratelimit import RateLimiter
from .state import ApiError, DiscordState, form_error

API_PREFIX = "/api/v10"
TOKEN_ROUTES = ("/webhooks/", "/interactions/")  # authenticated by the token in the URL, not global-limited
FILE_FIELD = re.compile(r"files\[(\d+)\]$")
MAX_THREAD_NAME = 100


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json", no charset: discord.py parses a body as JSON only on that exact value.
    body = json.dumps(data).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json"} | (headers or {}))


def json_error(error: ApiError) -> web.Response:
    return json_response(error.to_json(), status=error.status)


def parse_body(content_type: str, body: bytes) -> tuple[Any, dict[int, Upload]]:
    """JSON, or multipart/form-data with payload_json and files[n] (as discord.py and Discord's docs do)."""
    if not body:
        return None, {}
    if content_type.startswith("multipart/form-data"):
        return _parse_multipart(content_type, body)
    try:
        return json.loads(body), {}
    except ValueError:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None


def _parse_multipart(content_type: str, body: bytes) -> tuple[JSON, dict[int, Upload]]:
    headers = MimeHeaders()
    headers["Content-Type"] = content_type
    boundary = headers.get_param("boundary")
    if not isinstance(boundary, str):
        raise ApiError(400, 50035, "Invalid Form Body")
    payload: JSON = {}
    files: dict[int, Upload] = {}
    for raw in body.split(b"--" + boundary.encode())[1:]:
        if raw.startswith(b"--"):
            break  # the closing delimiter
        head, _, content = raw.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        part = email.parser.BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        if not isinstance(name, str):
            continue
        if name == "payload_json":
            try:
                payload |= json.loads(content)
            except ValueError:
                raise ApiError(400, 50109, "The request body contains invalid JSON.") from None
        elif (match := FILE_FIELD.match(name)) or filename is not None:
            index = int(match.group(1)) if match else len(files)
            files[index] = Upload(filename or name, content, part.get_content_type() if part["Content-Type"] else None)
        else:
            payload[name] = content.decode()
    return payload, files


@dataclass(frozen=True, slots=True)
class Body:
    json: Any  # parsed JSON, or the payload_json object of a multipart request
    files: dict[int, Upload]

    @property
    def payload(self) -> JSON:
        return self.json if isinstance(self.json, dict) else {}


Endpoint = Callable[[web.Request, Body], Awaitable[web.StreamResponse]]


class Api:
    """Routes /api/v10: authenticates, rate-limits, runs and records every request; errors become Discord JSON."""

    def __init__(self, app: web.Application, state: DiscordState, limiter: RateLimiter) -> None:
        self._app = app
        self._state = state
        self._limiter = limiter

    def add(self, method: str, template: str, endpoint: Endpoint) -> None:
        """Serve `method` on API_PREFIX + `template`; routes match in the order they are added."""

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, f"{method} {template}", template, endpoint)

        self._app.router.add_route(method, API_PREFIX + template, handle)

    def add_fallback(self) -> None:
        """Answer every other /api/v10 path with Discord's 404 (added last)."""

        async def not_found(request: web.Request, body: Body) -> web.StreamResponse:
            raise ApiError(404, 0, "404: Not Found")

        async def handle(request: web.Request) -> web.StreamResponse:
            path = request.path.removeprefix(API_PREFIX)
            return await self._serve(request, f"{request.method} {path}", path, not_found)

        self._app.router.add_route("*", API_PREFIX + "/{tail:.*}", handle)

    async def _serve(self, request: web.Request, route: str, template: str, endpoint: Endpoint) -> web.StreamResponse:
        raw = await request.read()
        body = Body(None, {})
        response: web.StreamResponse
        try:
            body = Body(*parse_body(request.headers.get("Content-Type", ""), raw))
            response = await self._limited(request, route, template, endpoint, body)
        except ApiError as error:
            response = json_error(error)
        self._state.calls.append(
            RestCall(
                method=request.method,
                path=request.path.removeprefix(API_PREFIX),
                route=route,
                query=dict(request.query),
                body=raw,
                json=body.json,
                files=tuple(body.files[i] for i in sorted(body.files)),
                status=response.status,
                at=time.monotonic(),
            )
        )
        self._state.waiters.notify()
        return response

    async def _limited(
        self, request: web.Request, route: str, template: str, endpoint: Endpoint, body: Body
    ) -> web.StreamResponse:
        by_token = template.startswith(TOKEN_ROUTES)
        if not by_token and request.headers.get("Authorization") != f"Bot {self._state.token}":
            raise ApiError(401, 0, "401: Unauthorized")
        info = request.match_info
        major = info.get("channel_id") or info.get("guild_id") or info.get("token") or ""
        verdict = self._limiter.check(route, major, counts_globally=not by_token)
        if not verdict.allowed:
            limited = {
                "message": "You are being rate limited.",
                "retry_after": verdict.retry_after,
                "global": verdict.is_global,
            }
            return json_response(limited, status=429, headers=verdict.headers)
        response = await endpoint(request, body)
        response.headers.update(verdict.headers)
        return response


class ChannelRoutes:
    """Users, gateway discovery, application, channels, messages, typing, DMs, threads, and the CDN."""

    def __init__(self, state: DiscordState, gateway: Gateway, messages: Messages) -> None:
        self._state = state
        self._gateway = gateway
        self._messages = messages
        self.gateway_url = ""  # set by the server once it listens

    def register(self, api: Api, app: web.Application) -> None:
        api.add("GET", "/users/@me", self.get_me)
        api.add("POST", "/users/@me/channels", self.open_dm)
        api.add("GET", "/users/{user_id}", self.get_user)
        api.add("GET", "/gateway", self.get_gateway)
        api.add("GET", "/gateway/bot", self.get_gateway_bot)
        api.add("GET", "/oauth2/applications/@me", self.get_application)
        api.add("GET", "/applications/@me", self.get_application)
        api.add("GET", "/channels/{channel_id}", self.get_channel)
        api.add("GET", "/channels/{channel_id}/messages", self.list_messages)
        api.add("POST", "/channels/{channel_id}/messages", self.post_message)
        api.add("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message)
        api.add("PATCH", "/channels/{channel_id}/messages/{message_id}", self.patch_message)
        api.add("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message)
        api.add("POST", "/channels/{channel_id}/typing", self.typing)
        api.add("POST", "/channels/{channel_id}/messages/{message_id}/threads", self.thread_from_message)
        api.add("POST", "/channels/{channel_id}/threads", self.thread_without_message)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self.cdn_attachment)

    # --- users, gateway, application --------------------------------------------------------------------

    async def get_me(self, request: web.Request, body: Body) -> web.Response:
        return json_response(self._state.bot.to_json() | {"verified": True, "mfa_enabled": False})

    async def get_user(self, request: web.Request, body: Body) -> web.Response:
        return json_response(self._state.user(request.match_info["user_id"]).to_json())

    async def get_gateway(self, request: web.Request, body: Body) -> web.Response:
        return json_response({"url": self.gateway_url})

    async def get_gateway_bot(self, request: web.Request, body: Body) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def get_application(self, request: web.Request, body: Body) -> web.Response:
        return json_response(self._state.application_json(flags=self._gateway.application_flags))

    async def open_dm(self, request: web.Request, body: Body) -> web.Response:
        recipient = str(body.payload.get("recipient_id"))
        user = self._state.users.get(int(recipient)) if recipient.isdigit() else None
        if user is None or user is self._state.bot:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        return json_response(self._state.dm_channel(user).to_json())

    # --- channels and messages --------------------------------------------------------------------------

    async def get_channel(self, request: web.Request, body: Body) -> web.Response:
        return json_response(self._state.channel(request.match_info["channel_id"]).to_json())

    def _message(self, request: web.Request) -> StoredMessage:
        channel = self._state.channel(request.match_info["channel_id"])
        return self._state.message(channel.id, request.match_info["message_id"])

    async def list_messages(self, request: web.Request, body: Body) -> web.Response:
        channel = self._state.channel(request.match_info["channel_id"])
        limit = max(1, min(int(request.query.get("limit", 50)), 100))
        before = int(request.query.get("before", 1 << 63))
        after = int(request.query.get("after", 0))
        alive = [m for m in self._state.channel_messages.get(channel.id, []) if not m.deleted and not m.ephemeral]
        chosen = [m for m in alive if after < m.id < before]
        chosen = chosen[:limit] if "after" in request.query else chosen[-limit:]
        return json_response([self._state.message_json(m) for m in reversed(chosen)])

    async def post_message(self, request: web.Request, body: Body) -> web.Response:
        channel = self._state.channel(request.match_info["channel_id"])
        message = self._messages.create(channel, body.payload, body.files)
        return json_response(self._state.message_json(message))

    async def get_message(self, request: web.Request, body: Body) -> web.Response:
        return json_response(self._state.message_json(self._message(request)))

    async def patch_message(self, request: web.Request, body: Body) -> web.Response:
        message = self._messages.edit(self._message(request), body.payload, body.files)
        return json_response(self._state.message_json(message))

    async def delete_message(self, request: web.Request, body: Body) -> web.Response:
        self._messages.delete(self._message(request))
        return web.Response(status=204)

    async def typing(self, request: web.Request, body: Body) -> web.Response:
        self._state.channel(request.match_info["channel_id"])
        return web.Response(status=204)

    # --- threads ----------------------------------------------------------------------------------------

    async def thread_from_message(self, request: web.Request, body: Body) -> web.Response:
        message = self._message(request)
        if message.thread_id is not None:
            raise ApiError(400, 160004, "A thread has already been created for this message")
        # A thread started from a message takes the message's id (docs "Start Thread from Message").
        thread = self._create_thread(request, body, ChannelType.PUBLIC_THREAD, thread_id=message.id)
        message.thread_id = message.id
        return json_response(thread, status=201)

    async def thread_without_message(self, request: web.Request, body: Body) -> web.Response:
        kind = int(body.payload.get("type") or ChannelType.PRIVATE_THREAD)
        if kind not in (ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD):
            raise form_error("type", "BASE_TYPE_CHOICES", "Value must be one of {11, 12}.")
        return json_response(self._create_thread(request, body, ChannelType(kind)), status=201)

    def _create_thread(
        self, request: web.Request, body: Body, kind: ChannelType, *, thread_id: int | None = None
    ) -> JSON:
        state = self._state
        parent = state.channel(request.match_info["channel_id"])
        guild = state.guild_of(parent)
        if guild is None or parent.is_thread:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        name = body.payload.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_THREAD_NAME:
            raise form_error("name", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_THREAD_NAME} in length.")
        thread = state.add_channel(
            guild, name, type=kind, parent_id=parent.id, owner_id=state.bot.id, channel_id=thread_id
        )
        member = {
            "id": str(thread.id),
            "user_id": str(state.bot.id),
            "join_timestamp": thread.created_at,
            "flags": 0,
        }
        data = thread.to_json() | {"member": member}
        self._gateway.dispatch("THREAD_CREATE", data | {"newly_created": True}, intent=Intent.GUILDS)
        return data

    # --- CDN ----------------------------------------------------------------------------------------------

    async def cdn_attachment(self, request: web.Request) -> web.Response:
        attachment = self._state.attachments.get(int(request.match_info["attachment_id"]))
        if attachment is None or attachment.filename != request.match_info["filename"]:
            raise web.HTTPNotFound()
        self._state.attachment_downloads.append(attachment.id)
        self._state.waiters.notify()
        return web.Response(body=attachment.data, content_type=attachment.content_type)
