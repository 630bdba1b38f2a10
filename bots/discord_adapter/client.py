"""ParleyDiscord, the discord.Client subclass: messages become turns streamed by core.live; slash commands.

Collaborators come in as keyword arguments, async set-up happens in `setup_hook`, and `close` ends what is
in flight. Imports only `core`, discord.py and this package.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bots.discord_adapter.commands import SlashCommands, add_commands
from bots.discord_adapter.conversations import (
    Place,
    conversation_key,
    in_bot_thread,
    is_image,
    mentions_bot,
    overheard_line,
    place_of,
    read_images,
    thread_name,
    turn_text,
    user_ref,
)
from bots.discord_adapter.documents import is_document, read_documents
from bots.discord_adapter.surface import DiscordSurface, discord_profile
from bots.discord_adapter.tasks import InFlight
from bots.discord_adapter.voice import voice_of
from core import (
    AccessDeniedError,
    Assistant,
    Budget,
    ConfigError,
    Discussion,
    ParleyError,
    Profile,
    Settings,
    Turn,
    secrets_redacted,
    show_reply,
    texts,
)

log = logging.getLogger(__name__)

MESSAGE_CONTENT_HELP = (
    "the bot's application lacks the Message Content intent: enable it in the Discord Developer Portal "
    "→ your application → Bot → Privileged Gateway Intents → Message Content"
)
ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440  # a day without messages, Discord's default for new threads


def intents() -> discord.Intents:
    """Server and DM messages with their text; no member or presence data (not needed, and privileged)."""
    wanted = discord.Intents.none()
    wanted.guilds = wanted.guild_messages = wanted.dm_messages = True
    wanted.message_content = True  # privileged: without the portal toggle the gateway closes with 4014
    return wanted


class ParleyDiscord(discord.Client):
    """The Discord bot. `async with ParleyDiscord(...) as bot: await bot.start(token)` runs until cancelled.

    DISCORD_API_BASE_URL / DISCORD_GATEWAY_URL move discord.py (process-wide: they are class attributes)
    for the bot's lifetime; `close` puts them back.
    """

    def __init__(
        self,
        *,
        assistant: Assistant,
        settings: Settings,
        profile: Profile | None = None,
        budget: Budget | None = None,
        guild_ready_timeout: float = 2.0,
        **options: Any,
    ) -> None:
        # Without allowed_mentions on the client, an edit that omits it would parse every mention.
        super().__init__(
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout,
            **options,
        )
        self._assistant = assistant
        self._settings = settings
        self._profile = profile or discord_profile(settings)
        # With REDIS_URL, every process (shard) of the bot draws on one budget; its name is the token's first
        # part, the bot's user id in base64: public, never the secret parts.
        token = settings.discord_bot_token.get_secret_value() if settings.discord_bot_token else ""
        stream = f"discord:{token.partition('.')[0]}"
        self._budget = budget or assistant.cluster.budget(settings.discord_requests_per_second, stream=stream)
        self._discussion = Discussion(settings.group_context_messages)
        self._in_flight = InFlight()
        self._saved_endpoints: tuple[str, yarl.URL] | None = None
        self.tree: app_commands.CommandTree[ParleyDiscord] = app_commands.CommandTree(self)
        add_commands(
            self.tree,
            SlashCommands(
                assistant=assistant,
                group_history=settings.group_history,
                image_max_bytes=settings.image_max_bytes,
                in_flight=self._in_flight,
                profile=self._profile,
            ),
        )

    # --- lifetime ------------------------------------------------------------------------------------------

    async def start(self, token: str, *, reconnect: bool = True) -> None:
        """Log in and stay connected until closed or cancelled; a refused token or intent is a ConfigError."""
        try:
            with secrets_redacted(token):  # interaction tokens are redacted by pattern (core/logs.py)
                await super().start(token, reconnect=reconnect)
        except discord.LoginFailure:
            raise ConfigError("DISCORD_BOT_TOKEN", "was refused by Discord (401 Unauthorized)") from None
        except discord.PrivilegedIntentsRequired:
            log.error("Discord closed the connection (4014): %s", MESSAGE_CONTENT_HELP)
            raise ConfigError("DISCORD_BOT_TOKEN", f"is not usable yet: {MESSAGE_CONTENT_HELP}") from None

    async def login(self, token: str) -> None:
        self._point_rest()  # login's first request already goes to the REST base
        await super().login(token)

    async def setup_hook(self) -> None:
        flags = self.application_flags
        if not (flags.gateway_message_content or flags.gateway_message_content_limited):
            log.warning("Discord will refuse to connect: %s", MESSAGE_CONTENT_HELP)
        await self._point_gateway()
        await self._sync_commands()

    async def close(self) -> None:
        await self._in_flight.drain(self._settings.shutdown_grace_seconds)  # SIGTERM: finish, then cancel
        try:
            await super().close()
        finally:
            self._restore_endpoints()

    @property
    def handlers_in_flight(self) -> int:
        """Messages and commands being answered right now."""
        return len(self._in_flight)

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("discord: logged in as %s (%s) in %d server(s)", self.user, self.user.id, len(self.guilds))

    # --- where discord.py connects -------------------------------------------------------------------------

    def _point_rest(self) -> None:
        base, gateway = self._settings.discord_api_base_url, self._settings.discord_gateway_url
        if not (base or gateway) or self._saved_endpoints is not None:
            return
        self._saved_endpoints = (discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        if base:
            discord.http.Route.BASE = base
        if gateway:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)

    async def _point_gateway(self) -> None:
        if self._settings.discord_api_base_url and not self._settings.discord_gateway_url:
            # A plain Client dials DEFAULT_GATEWAY and never asks: take the REST server's answer.
            _, url, _ = await self.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

    def _restore_endpoints(self) -> None:
        if self._saved_endpoints is not None:
            discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved_endpoints
            self._saved_endpoints = None

    async def _sync_commands(self) -> None:
        """Global commands can take an hour to show; guild ones appear at once (DISCORD_GUILD_IDS)."""
        guild_ids = self._settings.discord_guild_ids
        if not guild_ids:
            synced = await self.tree.sync()
            log.info("discord: %d slash commands synced globally", len(synced))
            return
        for guild_id in guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.HTTPException as exc:
                log.error(
                    "discord: slash commands not synced to server %s (HTTP %s, code %s): is the bot in it, "
                    "invited with the applications.commands scope?",
                    guild_id,
                    exc.status,
                    exc.code,
                )
                continue
            log.info("discord: %d slash commands synced to server %s", len(synced), guild_id)

    # --- messages ------------------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        if self.user is None or self._in_flight.closing:
            return  # shutting down: no new work
        if message.author.bot or message.type not in ANSWERED_TYPES:
            return  # our own messages come back through the gateway too; other bots are never answered
        place = place_of(message.channel, channel_id=message.channel.id, in_guild=message.guild is not None)
        replying = not place.is_dm and await self._replies_to_bot(message)
        if not (place.is_dm or replying or mentions_bot(message, self.user.id) or in_bot_thread(message, self.user.id)):
            # Not for us: nothing is stored; the line is only remembered in memory for GROUP_CONTEXT_MESSAGES.
            self._discussion.add(place.channel_id, message.author.display_name, overheard_line(message))
            return
        with self._in_flight.track():
            await self._answer(message, place, opens_thread=not replying)

    async def _replies_to_bot(self, message: discord.Message) -> bool:
        reference = message.reference
        if reference is None or reference.message_id is None or self.user is None:
            return False
        replied = reference.resolved or reference.cached_message
        if replied is None and message.type is discord.MessageType.reply:
            try:  # Discord omits the replied-to message when it could not load it; ask once
                replied = await message.channel.fetch_message(reference.message_id)
            except discord.HTTPException:
                return False
        return isinstance(replied, discord.Message) and replied.author.id == self.user.id

    async def _answer(self, message: discord.Message, place: Place, *, opens_thread: bool) -> None:
        """The top of a message handler: one streamed reply, or one short plain line on what went wrong."""
        try:
            # No thread is opened and no attachment fetched for a stranger.
            if self._settings.discord_auto_thread or any(is_image(a) or is_document(a) for a in message.attachments):
                key = conversation_key(place, message.author.id, group_history=self._settings.group_history)
                await self._assistant.require_access(key, user_ref(message.author))
            channel, answer_place, reply_to = await self._where_to_answer(message, place, opens_thread=opens_thread)
            turn = await self._turn(message, place, answer_place)
            surface = DiscordSurface(
                channel,
                chat_id=answer_place.channel_id,
                profile=self._profile,
                upload_limit_bytes=_upload_limit(message),
                reply_to=reply_to,
            )
            await show_reply(
                self._assistant, turn, surface, budget=self._budget, show_reasoning=self._settings.show_reasoning
            )
        except AccessDeniedError as exc:
            if place.is_dm:  # one polite refusal in a DM; in a server, silence
                await self._tell(message, exc.user_message)
        except ParleyError as exc:
            await self._tell(message, exc.user_message)
        except Exception:
            log.exception("discord: answering a message failed")
            await self._tell(message, texts.GENERIC_FAILURE)

    async def _where_to_answer(
        self, message: discord.Message, place: Place, *, opens_thread: bool
    ) -> tuple[discord.abc.Messageable, Place, discord.Message | None]:
        """The channel, or (DISCORD_AUTO_THREAD) a new thread started from a server channel's message."""
        if self._settings.discord_auto_thread and opens_thread and isinstance(message.channel, discord.TextChannel):
            name = thread_name(turn_text(message, self._bot_id), f"Conversation with {message.author.display_name}")
            try:
                thread = await message.create_thread(name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES)
            except discord.HTTPException as exc:  # no permission to create threads: answer in the channel
                log.warning("discord: could not open a thread (HTTP %s, code %s)", exc.status, exc.code)
            else:
                return thread, Place(thread.id, parent_id=place.channel_id), None
        return message.channel, place, None if place.is_dm else message

    async def _turn(self, message: discord.Message, place: Place, answer_place: Place) -> Turn:
        is_group = not place.is_dm
        return Turn(
            conversation=conversation_key(answer_place, message.author.id, group_history=self._settings.group_history),
            user=user_ref(message.author),
            text=turn_text(message, self._bot_id),
            images=await read_images(
                message.attachments,
                max_bytes=self._settings.image_max_bytes,
                max_total=self._settings.image_max_bytes_per_turn,
            ),
            platform_message_id=str(message.id),
            context=self._discussion.take(place.channel_id) if is_group else (),
            voice=voice_of(message),  # downloaded by the core, once it checked access and the limits
            documents=await read_documents(message.attachments, max_bytes=self._settings.max_document_bytes),
        )

    async def _tell(self, message: discord.Message, text: str) -> None:
        try:
            await message.channel.send(text, reference=message.to_reference(fail_if_not_exists=False))
        except discord.HTTPException as exc:
            log.warning("discord: could not send an error notice (HTTP %s, code %s)", exc.status, exc.code)

    @property
    def _bot_id(self) -> int:
        assert self.user is not None
        return self.user.id


class ShardedParleyDiscord(ParleyDiscord, discord.AutoShardedClient):
    """ParleyDiscord running some shards of a bot split across processes: one gateway connection each."""


def build_client(*, assistant: Assistant, settings: Settings, **options: Any) -> ParleyDiscord:
    """The client for DISCORD_SHARD_IDS / DISCORD_SHARD_COUNT: unset, one unsharded connection (as now)."""
    ids, count = settings.discord_shard_ids, settings.discord_shard_count
    if count is None:
        if ids:
            raise ConfigError("DISCORD_SHARD_IDS", "needs DISCORD_SHARD_COUNT (the total over all processes)")
        return ParleyDiscord(assistant=assistant, settings=settings, **options)
    if any(shard >= count for shard in ids):
        raise ConfigError("DISCORD_SHARD_IDS", f"must be below DISCORD_SHARD_COUNT ({count})")
    return ShardedParleyDiscord(
        assistant=assistant, settings=settings, shard_ids=list(ids) or None, shard_count=count, **options
    )


def _upload_limit(message: discord.Message) -> int:
    return message.guild.filesize_limit if message.guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
