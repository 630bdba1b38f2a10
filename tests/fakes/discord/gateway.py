"""The fake gateway: a websocket speaking Discord gateway v10 (JSON; zlib-stream when asked) with resumable sessions.

Every dispatch is logged per session with its sequence number, so a RESUME replays exactly what was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

from aiohttp import WSMsgType, web

from .models import APP_FLAG_MESSAGE_CONTENT, JSON, PRIVILEGED_INTENTS, Intent
from .state import DiscordState

DEFAULT_HEARTBEAT_INTERVAL_MS = 41_250  # what Discord sends in HELLO
# Gateway "Sending Heartbeats": a client sends op 1 every heartbeat_interval; one that stops is closed
# (the fake allows half an interval of grace for jitter and scheduling) and must reconnect.
HEARTBEAT_GRACE = 1.5
GUILD_EVENTS_BY_ID = frozenset({"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"})  # guild id in "id"
CLOSE_WAIT_SECONDS = 2.0

DataFor = Callable[[int], JSON | None]  # session intents -> payload for that session, or None to skip it


class Op(IntEnum):
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class Close(IntEnum):
    """Gateway close codes (Discord docs "Opcodes and Status Codes")."""

    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014


@dataclass(frozen=True, slots=True)
class Connection:
    path: str
    query: dict[str, str]
    compression: str | None  # "zlib-stream", or None: plain text frames


@dataclass(frozen=True, slots=True)
class Identify:
    session_id: str
    intents: int
    properties: JSON
    shard: list[int] | None = None  # [shard_id, shard_count] when the client shards


@dataclass(frozen=True, slots=True)
class Resume:
    session_id: str
    seq: int | None  # the last sequence number the client had
    replayed: int  # dispatches sent again before RESUMED
    path: str


@dataclass(frozen=True, slots=True)
class Delivery:
    shard: tuple[int, int]  # (shard_id, shard_count) of the session that got it
    event: str
    data: JSON


@dataclass(frozen=True, slots=True)
class _CloseRequest:
    code: int
    reason: str


class _Link:
    """One websocket: frames leave in order through one writer task, which also owns the zlib stream."""

    def __init__(self, ws: web.WebSocketResponse, info: Connection) -> None:
        self.ws = ws
        self.info = info
        self.session: _Session | None = None
        self.beat = asyncio.Event()  # set by each heartbeat the client sends
        self._queue: asyncio.Queue[str | _CloseRequest] = asyncio.Queue()
        self._compressor = zlib.compressobj() if info.compression == "zlib-stream" else None

    def send(self, frame: JSON) -> None:
        self._queue.put_nowait(json.dumps(frame, separators=(",", ":")))

    def send_text(self, text: str) -> None:
        self._queue.put_nowait(text)

    def close(self, code: int, reason: str) -> None:
        self._queue.put_nowait(_CloseRequest(code, reason))

    async def run_writer(self) -> None:
        while True:
            item = await self._queue.get()
            if self.ws.closed:
                return
            if isinstance(item, _CloseRequest):
                await self.ws.close(code=item.code, message=item.reason.encode())
                return
            if self._compressor is None:
                await self.ws.send_str(item)
            else:
                data = self._compressor.compress(item.encode()) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)


def shard_of(guild_id: int | None, shard_count: int) -> int:
    """The shard that carries a guild's events: shard_id = (guild_id >> 22) % num_shards; DMs go to shard 0
    only (https://discord.com/developers/docs/events/gateway#sharding, "Sharding Formula")."""
    return 0 if guild_id is None else (guild_id >> 22) % shard_count


def _guild_id(event: str, data: JSON) -> int | None:
    raw = data.get("id") if event in GUILD_EVENTS_BY_ID else data.get("guild_id")
    return int(raw) if raw is not None else None


@dataclass(eq=False)
class _Session:
    id: str
    intents: int
    shard: tuple[int, int] = (0, 1)  # [shard_id, shard_count] from IDENTIFY
    seq: int = 0
    log: list[tuple[int, str]] = field(default_factory=list)
    link: _Link | None = None

    def emit(self, event: str, data: JSON) -> None:
        self.seq += 1
        text = json.dumps({"op": Op.DISPATCH, "d": data, "s": self.seq, "t": event}, separators=(",", ":"))
        self.log.append((self.seq, text))
        if self.link is not None:
            self.link.send_text(text)


def _valid_shard(shard: Any) -> bool:
    """IDENTIFY's shard is [shard_id, num_shards] with 0 <= shard_id < num_shards."""
    return (
        isinstance(shard, list)
        and len(shard) == 2
        and all(isinstance(n, int) for n in shard)
        and 0 <= shard[0] < shard[1]
    )


def _frame(op: Op, data: Any) -> JSON:
    return {"op": int(op), "d": data, "s": None, "t": None}


class Gateway:
    def __init__(
        self,
        state: DiscordState,
        *,
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
        message_content_enabled: bool = True,
    ) -> None:
        self._state = state
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.allowed_privileged = int(PRIVILEGED_INTENTS if message_content_enabled else Intent.GUILD_MEMBERS)
        self.resume_url = ""  # set by the server once it listens
        self.connections: list[Connection] = []
        self.identifies: list[Identify] = []
        self.resumes: list[Resume] = []
        self.presence_updates: list[JSON] = []
        self.received_frames: list[str] = []  # everything the client sent, raw
        self.heartbeats = 0
        self.heartbeat_timeouts = 0  # links closed for not heartbeating
        self.delivered: list[Delivery] = []  # every DISPATCH sent after READY's burst, with its shard
        self._sessions: dict[str, _Session] = {}
        self._links: set[_Link] = set()

    @property
    def application_flags(self) -> int:
        return APP_FLAG_MESSAGE_CONTENT if self.allowed_privileged & Intent.MESSAGE_CONTENT else 0

    def frames_without_token(self) -> list[Any]:
        """The frames the client sent, parsed, with IDENTIFY's and RESUME's token removed."""
        frames: list[Any] = []
        for text in self.received_frames:
            try:
                frame = json.loads(text)
            except ValueError:
                frames.append(text)
                continue
            data = frame.get("d")
            if isinstance(data, dict):
                frame["d"] = {k: v for k, v in data.items() if k != "token"}
            frames.append(frame)
        return frames

    # --- dispatching ------------------------------------------------------------------------------------

    def dispatch(self, event: str, data: JSON, *, intent: int | None = None) -> None:
        """Send a DISPATCH to every session subscribed to `intent` (None: sent regardless of intents)."""
        self.dispatch_each(event, lambda intents: data if intent is None or intents & intent else None)

    def dispatch_each(self, event: str, data_for: DataFor) -> None:
        """Each session gets its payload, if its shard carries the event's guild (DMs: shard 0 only)."""
        for session in self._sessions.values():
            data = data_for(session.intents)
            if data is None:
                continue
            shard_id, shard_count = session.shard
            if shard_of(_guild_id(event, data), shard_count) == shard_id:
                session.emit(event, data)
                self.delivered.append(Delivery(session.shard, event, data))
        self._state.waiters.notify()

    @property
    def is_connected(self) -> bool:
        return any(s.link is not None for s in self._sessions.values())

    def force_reconnect(self, how: Literal["reconnect", "close", "invalidate"]) -> None:
        """Detach the live session from its socket (later events wait in its log), then make the client
        reconnect: op 7 RECONNECT, a resumable close 4000, or op 9 INVALID_SESSION (not resumable)."""
        session = next((s for s in reversed(self._sessions.values()) if s.link is not None), None)
        if session is None or session.link is None:
            raise RuntimeError("fake Discord: no live gateway session to disconnect")
        link, session.link = session.link, None
        link.session = None
        if how == "reconnect":
            link.send(_frame(Op.RECONNECT, None))
        elif how == "close":
            link.close(Close.UNKNOWN_ERROR, "fake: forced disconnect")
        else:
            del self._sessions[session.id]
            link.send(_frame(Op.INVALID_SESSION, False))

    async def close(self) -> None:
        for link in list(self._links):
            link.close(1001, "fake Discord shutting down")
        with contextlib.suppress(TimeoutError):
            await self._state.waiters.wait_for(lambda: not self._links, CLOSE_WAIT_SECONDS)

    # --- the websocket ----------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        query = dict(request.query)
        compression = "zlib-stream" if query.get("compress") == "zlib-stream" else None
        info = Connection(path=request.path, query=query, compression=compression)
        self.connections.append(info)
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        link = _Link(ws, info)
        self._links.add(link)
        writer = asyncio.create_task(link.run_writer())
        watchdog = asyncio.create_task(self._watch_heartbeats(link))
        try:
            if query.get("v") != "10":
                link.close(Close.INVALID_API_VERSION, "Invalid API version.")
            elif query.get("encoding", "json") != "json":
                link.close(Close.DECODE_ERROR, "Only JSON encoding is supported by the fake.")
            else:
                link.send(_frame(Op.HELLO, {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["fake"]}))
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    self.received_frames.append(message.data)
                    self._on_frame(link, message.data)
                elif message.type is WSMsgType.BINARY:
                    link.close(Close.DECODE_ERROR, "Error while decoding payload.")
        finally:
            if link.session is not None and link.session.link is link:
                link.session.link = None
            self._links.discard(link)
            writer.cancel()
            watchdog.cancel()
            await asyncio.gather(writer, watchdog, return_exceptions=True)
            self._state.waiters.notify()
        return ws

    def _on_frame(self, link: _Link, text: str) -> None:
        try:
            frame = json.loads(text)
            raw_op, data = frame["op"], frame.get("d")
        except (ValueError, KeyError, TypeError):
            link.close(Close.DECODE_ERROR, "Error while decoding payload.")
            return
        try:
            op = Op(raw_op)
        except ValueError:
            link.close(Close.UNKNOWN_OPCODE, "Unknown opcode.")
            return
        if op is Op.HEARTBEAT:
            self.heartbeats += 1
            link.beat.set()
            link.send(_frame(Op.HEARTBEAT_ACK, None))
        elif op is Op.IDENTIFY:
            self._identify(link, data)
        elif op is Op.RESUME:
            self._resume(link, data)
        elif link.session is None:
            link.close(Close.NOT_AUTHENTICATED, "Not authenticated.")
        elif op is Op.PRESENCE_UPDATE:
            self.presence_updates.append(data)
        elif op is not Op.REQUEST_GUILD_MEMBERS:
            link.close(Close.UNKNOWN_OPCODE, "Unknown opcode.")
        self._state.waiters.notify()

    async def _watch_heartbeats(self, link: _Link) -> None:
        """Close the link with 4009 when no heartbeat arrives within HEARTBEAT_GRACE intervals."""
        limit = self.heartbeat_interval_ms / 1000 * HEARTBEAT_GRACE
        while not link.ws.closed:
            try:
                async with asyncio.timeout(limit):
                    await link.beat.wait()
            except TimeoutError:
                self.heartbeat_timeouts += 1
                link.close(Close.SESSION_TIMED_OUT, "Session timed out.")
                return
            link.beat.clear()

    def _identify(self, link: _Link, data: JSON) -> None:
        if link.session is not None:
            link.close(Close.ALREADY_AUTHENTICATED, "Already authenticated.")
            return
        if data.get("token") != self._state.token:
            link.close(Close.AUTHENTICATION_FAILED, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0:
            link.close(Close.INVALID_INTENTS, "Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~self.allowed_privileged:
            link.close(Close.DISALLOWED_INTENTS, "Disallowed intent(s).")
            return
        # A fresh IDENTIFY ends the sessions nobody can resume any more.
        self._sessions = {k: s for k, s in self._sessions.items() if s.link is not None}
        shard = data.get("shard")
        if shard is not None and not _valid_shard(shard):
            link.close(Close.INVALID_SHARD, "Invalid shard.")
            return
        session = _Session(
            id=secrets.token_hex(16), intents=intents, link=link, shard=(shard[0], shard[1]) if shard else (0, 1)
        )
        self._sessions[session.id] = session
        link.session = session
        self.identifies.append(Identify(session.id, intents, data.get("properties", {}), data.get("shard")))
        state = self._state
        ready: JSON = {
            "v": 10,
            "user": state.bot.to_json() | {"verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g), "unavailable": True} for g in state.guilds if self._carries(session, g)],
            "session_id": session.id,
            "resume_gateway_url": self.resume_url,
            "session_type": "normal",
            "application": {"id": str(state.application_id), "flags": self.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
            "user_settings": {},
            "_trace": ["fake"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        session.emit("READY", ready)
        if intents & Intent.GUILDS:
            for guild_id, guild in state.guilds.items():
                if self._carries(session, guild_id):
                    session.emit("GUILD_CREATE", state.guild_create_json(guild))

    @staticmethod
    def _carries(session: _Session, guild_id: int) -> bool:
        return shard_of(guild_id, session.shard[1]) == session.shard[0]

    def _resume(self, link: _Link, data: JSON) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self._state.token:
            link.send(_frame(Op.INVALID_SESSION, False))
            return
        if session.link is not None and session.link is not link:
            session.link.session = None
            session.link.close(Close.UNKNOWN_ERROR, "Session resumed elsewhere.")
        seq = data.get("seq")
        missed = [text for s, text in session.log if s > (seq or 0)]
        for text in missed:
            link.send_text(text)
        session.link, link.session = link, session
        self.resumes.append(Resume(session.id, seq, len(missed), link.info.path))
        session.emit("RESUMED", {"_trace": ["fake"]})
