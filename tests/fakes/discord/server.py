"""FakeDiscord: one aiohttp server on 127.0.0.1 (REST v10, gateway, CDN) and the helpers tests drive it with.

Everything is recorded: REST calls, messages with their versions, pings, 429s, identifies, resumes, interactions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Literal, Self, TypeVar

from aiohttp import web

from .gateway import DEFAULT_HEARTBEAT_INTERVAL_MS, Connection, Delivery, Gateway, Identify, Resume
from .interactions import ACK_WINDOW_SECONDS, InteractionRoutes, OptionValue
from .messages import Messages
from .models import (
    JSON,
    ChannelType,
    CommandSync,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeRole,
    FakeUser,
    Intent,
    MessageFlag,
    Ping,
    RestCall,
    StoredMessage,
    Upload,
)
from .ratelimit import RateLimiter, RateLimitPolicy
from .rest import Api, ChannelRoutes
from .state import DiscordState, strings_in
from .voice import check_voice_message

T = TypeVar("T")
ChannelRef = FakeChannel | int
DEFAULT_TOKEN = "fake-discord-bot-token"
# discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES: Discord lowered the unboosted limit from 25 MiB to 10 MiB in 2024.
DEFAULT_UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024
MAX_REQUEST_BYTES = 256 * 1024 * 1024  # read everything; the upload limit answers 40005 itself
DEFAULT_WAIT_SECONDS = 5.0


class FakeDiscord:
    """A Discord the real discord.py client can log into: `async with FakeDiscord() as dc:`.

    Build the world with add_guild / add_channel / add_user (before or after the bot connects), drive it with
    user_sends / invoke_slash / autocomplete / force_reconnect, and assert on messages(), calls, pings,
    count_429, resumes. Point discord.py at it with `point_discord_py_at(dc.rest_base, dc.gateway_url)`.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        bot_name: str = "parley",
        rate_limits: RateLimitPolicy | None = None,
        upload_limit_bytes: int = DEFAULT_UPLOAD_LIMIT_BYTES,
        message_content_enabled: bool = True,
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
        interaction_ack_seconds: float | None = ACK_WINDOW_SECONDS,
    ) -> None:
        self._state = DiscordState(bot_name=bot_name, token=token, upload_limit_bytes=upload_limit_bytes)
        self.rate_limits = rate_limits or RateLimitPolicy()
        self.limiter = RateLimiter(self.rate_limits)
        self._gateway = Gateway(
            self._state,
            heartbeat_interval_ms=heartbeat_interval_ms,
            message_content_enabled=message_content_enabled,
        )
        self._messages = Messages(self._state, self._gateway)
        self._channel_routes = ChannelRoutes(self._state, self._gateway, self._messages)
        self._interaction_routes = InteractionRoutes(self._state, self._gateway, self._messages)
        self._interaction_routes.ack_window_seconds = interaction_ack_seconds
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        api = Api(app, self._state, self.limiter)
        self._channel_routes.register(api, app)
        self._interaction_routes.register(api)
        api.add_fallback()
        app.router.add_get("/gateway", self._gateway.handle)
        app.router.add_get("/gateway-resume", self._gateway.handle)  # READY's resume_gateway_url
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = self._state.public_base = f"http://127.0.0.1:{port}"
        self._channel_routes.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        self._gateway.resume_url = f"ws://127.0.0.1:{port}/gateway-resume"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- addresses and identity -----------------------------------------------------------------------

    @property
    def rest_base(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return self._channel_routes.gateway_url

    @property
    def token(self) -> str:
        return self._state.token

    @property
    def bot(self) -> FakeUser:
        return self._state.bot

    @property
    def application_id(self) -> int:
        return self._state.application_id

    @property
    def upload_limit_bytes(self) -> int:
        return self._state.upload_limit_bytes

    @upload_limit_bytes.setter
    def upload_limit_bytes(self, value: int) -> None:
        self._state.upload_limit_bytes = value

    @property
    def interaction_ack_seconds(self) -> float | None:
        """How long the bot has for an interaction's first callback (None: forever); later: 404 10062."""
        return self._interaction_routes.ack_window_seconds

    @interaction_ack_seconds.setter
    def interaction_ack_seconds(self, value: float | None) -> None:
        self._interaction_routes.ack_window_seconds = value

    # --- building the world -------------------------------------------------------------------------------

    def add_user(self, username: str, *, global_name: str | None = None, bot: bool = False) -> FakeUser:
        return self._state.add_user(username, global_name=global_name, bot=bot)

    def add_guild(
        self, name: str = "Parley Test", *, members: Iterable[FakeUser] = (), guild_id: int | None = None
    ) -> FakeGuild:
        """A guild the bot is in; dispatched as GUILD_CREATE if the bot is already connected.

        `guild_id` picks its snowflake, e.g. to place it on a shard: (guild_id >> 22) % shard_count."""
        guild = self._state.add_guild(name, guild_id=guild_id)
        for user in members:
            guild.members[user.id] = FakeMember(user)
        self._gateway.dispatch("GUILD_CREATE", self._state.guild_create_json(guild), intent=Intent.GUILDS)
        return guild

    def add_member(self, guild: FakeGuild, user: FakeUser, *, roles: Sequence[FakeRole] = ()) -> FakeMember:
        member = guild.members[user.id] = FakeMember(user, [r.id for r in roles])
        return member

    def add_role(self, guild: FakeGuild, name: str, *, mentionable: bool = True, permissions: int = 0) -> FakeRole:
        role = FakeRole(self._state.ids.next(), guild.id, name, permissions, mentionable, position=len(guild.roles))
        guild.roles[role.id] = role
        data = {"guild_id": str(guild.id), "role": role.to_json()}
        self._gateway.dispatch("GUILD_ROLE_CREATE", data, intent=Intent.GUILDS)
        return role

    def add_channel(self, guild: FakeGuild, name: str = "general") -> FakeChannel:
        """A text channel; dispatched as CHANNEL_CREATE if the bot is connected."""
        channel = self._state.add_channel(guild, name)
        self._gateway.dispatch("CHANNEL_CREATE", channel.to_json(), intent=Intent.GUILDS)
        return channel

    def add_thread(self, parent: FakeChannel, name: str, *, owner: FakeUser, private: bool = False) -> FakeChannel:
        """A thread some user opened in `parent`; dispatched as THREAD_CREATE if the bot is connected."""
        guild = self._state.guild_of(parent)
        if guild is None or parent.is_thread:
            raise ValueError("threads live in guild text channels")
        kind = ChannelType.PRIVATE_THREAD if private else ChannelType.PUBLIC_THREAD
        thread = self._state.add_channel(guild, name, type=kind, parent_id=parent.id, owner_id=owner.id)
        self._gateway.dispatch("THREAD_CREATE", thread.to_json() | {"newly_created": True}, intent=Intent.GUILDS)
        return thread

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        return self._state.dm_channel(user)

    def channel(self, channel: ChannelRef) -> FakeChannel:
        return self._state.channel(channel.id if isinstance(channel, FakeChannel) else channel)

    # --- driving it ----------------------------------------------------------------------------------------

    def user_sends(
        self,
        channel: ChannelRef,
        author: FakeUser,
        content: str,
        *,
        mentions_bot: bool = False,
        reply_to: StoredMessage | int | None = None,
        attachments: Sequence[Upload] = (),
        ping_reply: bool = True,
        voice_message: bool = False,
    ) -> StoredMessage:
        """A user's message, dispatched as MESSAGE_CREATE (content blanked for bots without the intent,
        unless it mentions the bot or is a DM). Attachment urls are served by the fake. `voice_message`: the
        one attachment is a recording (`voice.voice_upload`), flagged IS_VOICE_MESSAGE, as Discord's rules say."""
        flags = 0
        if voice_message:
            check_voice_message(content, attachments)
            flags = MessageFlag.IS_VOICE_MESSAGE
        target = self.channel(channel)
        if target.is_dm and target.recipient is not author:
            raise ValueError("only the DM's recipient can write in it")
        replied = None
        if reply_to is not None:
            replied = self._state.message(target.id, reply_to.id if isinstance(reply_to, StoredMessage) else reply_to)
        return self._messages.from_user(
            target,
            author,
            content,
            mentions_bot=mentions_bot,
            reply_to=replied,
            attachments=attachments,
            ping_reply=ping_reply,
            flags=flags,
        )

    def invoke_slash(
        self,
        name: str,
        options: Mapping[str, OptionValue] | None = None,
        *,
        channel: ChannelRef,
        user: FakeUser,
    ) -> FakeInteraction:
        """INTERACTION_CREATE for /name. Option types come from the synced command, else from the Python
        value; an Upload value becomes an attachment option with a resolved attachment."""
        return self._interaction_routes.send(2, name, options or {}, channel=self.channel(channel), user=user)

    def autocomplete(
        self,
        name: str,
        options: Mapping[str, OptionValue],
        *,
        focused: str,
        channel: ChannelRef,
        user: FakeUser,
    ) -> FakeInteraction:
        """An autocomplete interaction (type 4); the bot's choices land in `interaction.choices`."""
        target = self.channel(channel)
        return self._interaction_routes.send(4, name, options, channel=target, user=user, focused=focused)

    async def force_reconnect(
        self,
        how: Literal["reconnect", "close", "invalidate"] = "reconnect",
        *,
        wait: bool = True,
        timeout_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> None:
        """Make the client reconnect (op 7, a resumable close 4000, or op 9). Events dispatched meanwhile wait
        in the session and are replayed on RESUME. With `wait`, return once the client resumed
        (or, for "invalidate", identified again: discord.py first sleeps 5 s)."""
        before = len(self.resumes), len(self.identifies)
        self._gateway.force_reconnect(how)
        if wait:
            if how == "invalidate":
                await self.wait_for(lambda: len(self.identifies) > before[1], timeout_seconds)
            else:
                await self.wait_for(lambda: len(self.resumes) > before[0], timeout_seconds)

    def dispatch(self, event: str, data: JSON, *, intent: int | None = None) -> None:
        """Send any other gateway event as is."""
        self._gateway.dispatch(event, data, intent=intent)

    async def wait_for(self, predicate: Callable[[], T | None], timeout_seconds: float = DEFAULT_WAIT_SECONDS) -> T:
        """Wait until predicate() is truthy (re-checked on every change, and every 50 ms) and return its value;
        TimeoutError after `timeout_seconds`."""
        return await self._state.waiters.wait_for(predicate, timeout_seconds)

    # --- records ------------------------------------------------------------------------------------------

    def messages(self, channel: ChannelRef) -> list[StoredMessage]:
        """Every message of the channel in order, deleted and ephemeral ones included (see their flags)."""
        return list(self._state.channel_messages.get(self.channel(channel).id, []))

    def bot_messages(self, channel: ChannelRef) -> list[StoredMessage]:
        """The bot's messages still visible in the channel, in order."""
        return [m for m in self.messages(channel) if m.author is self.bot and not m.deleted]

    def message(self, message_id: int) -> StoredMessage:
        return self._state.messages[message_id]

    @property
    def calls(self) -> list[RestCall]:
        return list(self._state.calls)

    def calls_to(self, route: str) -> list[RestCall]:
        """Calls to one route template, e.g. calls_to("PATCH /channels/{channel_id}/messages/{message_id}")."""
        return [c for c in self._state.calls if c.route == route]

    def inject_429(self, route: str, retry_after: float) -> None:
        """The next request on `route` (a template, as in `calls_to`) is refused with a 429 that no
        X-RateLimit header announced; the bucket stays closed for `retry_after` seconds."""
        self.limiter.inject_429(route, retry_after)

    @property
    def attachment_downloads(self) -> list[int]:
        """The attachment ids the bot fetched from the fake CDN, in order (users' files included)."""
        return list(self._state.attachment_downloads)

    @property
    def count_429(self) -> int:
        return sum(1 for c in self._state.calls if c.status == 429)

    @property
    def pings(self) -> list[Ping]:
        """Bot sends and edits that would notify someone (@everyone, @here, a role or a user)."""
        return list(self._state.pings)

    @property
    def interactions(self) -> list[FakeInteraction]:
        return list(self._state.interactions.values())

    @property
    def command_syncs(self) -> list[CommandSync]:
        return list(self._state.command_syncs)

    def commands(self, guild: FakeGuild | None = None) -> list[JSON]:
        """The registered application commands: global, or of one guild."""
        return list(self._state.commands.get(guild.id if guild else None, []))

    @property
    def connections(self) -> list[Connection]:
        return list(self._gateway.connections)

    @property
    def identifies(self) -> list[Identify]:
        return list(self._gateway.identifies)

    @property
    def resumes(self) -> list[Resume]:
        return list(self._gateway.resumes)

    @property
    def delivered(self) -> list[Delivery]:
        """Gateway events as sent, each with the shard that got it (shard routing is the fake's)."""
        return list(self._gateway.delivered)

    @property
    def heartbeat_timeouts(self) -> int:
        """Gateway links closed with 4009 because the client stopped heartbeating."""
        return self._gateway.heartbeat_timeouts

    @property
    def heartbeats(self) -> int:
        return self._gateway.heartbeats

    def all_sent_text(self) -> list[str]:
        """Every string the bot sent over REST (JSON and payload_json values, file names, query values) and in
        gateway frames other than its token."""
        found: list[str] = []
        for call in self._state.calls:
            found += strings_in(call.json) + [f.filename for f in call.files] + list(call.query.values())
        found += [s for frame in self._gateway.frames_without_token() for s in strings_in(frame)]
        return found

    def sent_anywhere(self, needle: str) -> bool:
        """Whether `needle` appears in any raw request (path, query, body, file bytes) or gateway frame."""
        raw = needle.encode()
        for call in self._state.calls:
            if raw in call.body or needle in call.path or any(needle in v for v in call.query.values()):
                return True
        return any(needle in frame for frame in self._gateway.received_frames)
