"""Slash commands: /imagine prompt [image], /reset, /model [name] (autocompleted), /system [text], /usage,
/forget, and for admins /stats, /grant and /revoke (hidden from members without Administrator; the core
checks ADMINS anyway).

Every command is acknowledged at once (Discord allows 3 s), then answered; failures are told to the user
alone (ephemeral), and only `user_message`s or a generic line ever reach them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, cast

import discord
from discord import app_commands
from discord.abc import Messageable

from bots.discord_adapter.conversations import (
    GroupHistory,
    conversation_key,
    place_of,
    read_image,
    user_ref,
)
from bots.discord_adapter.surface import MAX_CONTENT_CHARS, DiscordSurface
from bots.discord_adapter.tasks import InFlight
from core import Assistant, ChatAdminCheck, ConversationKey, ParleyError, Profile, Rendered, UserRef, texts

log = logging.getLogger(__name__)

MAX_CHOICES = 25  # autocomplete answers at most 25 choices (Discord docs, "Autocomplete")
MAX_CHOICE_CHARS = 100
NONE = discord.AllowedMentions.none()


class _FollowUp:
    """The interaction's follow-up webhook in the shape of the channel DiscordSurface sends to. Its first
    message replaces the "thinking…" one, and it needs no permission in the channel, only the interaction."""

    def __init__(self, webhook: discord.Webhook) -> None:
        self._webhook = webhook

    async def send(self, content: str | None = None, *, files: Sequence[discord.File] = ()) -> discord.Message:
        # MISSING: no content field at all; wait=True returns the message (interaction webhooks always wait).
        return await self._webhook.send(
            content or discord.utils.MISSING, files=list(files), wait=True, allowed_mentions=NONE
        )


class SlashCommands:
    """What the commands do; `add_commands` wires them into a CommandTree."""

    def __init__(
        self,
        *,
        assistant: Assistant,
        group_history: GroupHistory,
        image_max_bytes: int,
        in_flight: InFlight,
        profile: Profile,
    ) -> None:
        self._assistant = assistant
        self._profile = profile
        self._group_history: GroupHistory = group_history
        self._image_max_bytes = image_max_bytes
        self._in_flight = in_flight

    async def imagine(self, interaction: discord.Interaction, prompt: str, image: discord.Attachment | None) -> None:
        await interaction.response.defer(thinking=True)
        async with self._answering(interaction, ephemeral=False):
            key, user = self._where(interaction)
            if image is not None:  # a stranger's attachment is never fetched
                await self._assistant.require_access(key, user)
            references = [await read_image(image, max_bytes=self._image_max_bytes)] if image else []
            result = await self._assistant.imagine(prompt, conversation=key, user=user, references=references)
            surface = DiscordSurface(
                # The surface needs only `send(content, files=...)`, which _FollowUp has.
                cast("Messageable", _FollowUp(interaction.followup)),
                chat_id=interaction.channel_id or 0,
                profile=self._profile,
                upload_limit_bytes=interaction.filesize_limit,
            )
            caption = _clip(result.text)
            await surface.send_images(result.images, Rendered(caption, "markdown") if caption else None)

    async def reset(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self._answering(interaction, ephemeral=True):
            key, user = self._where(interaction)
            await self._assistant.reset(key, user, chat_admin=_chat_admin(interaction))
            await self._tell(interaction, markdown(texts.reset_done()))

    async def model(self, interaction: discord.Interaction, name: str | None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self._answering(interaction, ephemeral=True):
            key, user = self._where(interaction)
            if name:
                chosen = await self._assistant.set_model(key, user, name, chat_admin=_chat_admin(interaction))
                await self._tell(interaction, markdown(texts.model_set(chosen)))
                return
            current = await self._assistant.current_model(key, user)
            await self._tell(interaction, markdown(texts.model_choices(current, await self._assistant.models())))

    async def system(self, interaction: discord.Interaction, text: str | None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self._answering(interaction, ephemeral=True):
            key, user = self._where(interaction)
            result = await self._assistant.system_prompt(key, user, text or "", chat_admin=_chat_admin(interaction))
            # A prompt is anyone's text, up to MAX_SYSTEM_PROMPT_CHARS: every mark escaped, in as many messages
            # as it takes.
            for piece in verbatim_pieces(texts.system_prompt(result), MAX_CONTENT_CHARS):
                await self._tell(interaction, piece)

    async def model_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        try:
            key, user = self._where(interaction)
            if not (await self._assistant.access(key, user)).allowed:
                return []  # strangers see no choices: the gateway's model list is not theirs to read
            models = await self._assistant.models()
        except Exception:  # an autocomplete failure must not become an error popup; no choices instead
            log.warning("listing models for autocomplete failed", exc_info=True)
            return []
        wanted = current.strip().lower()
        matching = [m for m in models if wanted in m.lower() and len(m) <= MAX_CHOICE_CHARS]
        return [app_commands.Choice(name=m, value=m) for m in matching[:MAX_CHOICES]]

    async def usage(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self._answering(interaction, ephemeral=True):
            key, user = self._where(interaction)
            await self._tell(interaction, markdown(texts.usage(await self._assistant.usage(key, user))))

    async def forget(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self._answering(interaction, ephemeral=True):
            key, user = self._where(interaction)
            await self._tell(interaction, markdown(texts.forgotten(await self._assistant.forget(key.platform, user))))

    async def stats(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self._answering(interaction, ephemeral=True):
            key, user = self._where(interaction)
            await self._tell(interaction, markdown(texts.stats(await self._assistant.stats(user, key.platform))))

    async def set_access(self, interaction: discord.Interaction, kind: str, subject_id: str, *, grant: bool) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self._answering(interaction, ephemeral=True):
            key, user = self._where(interaction)
            change = self._assistant.grant if grant else self._assistant.revoke
            await change(user, key.platform, kind, subject_id)
            await self._tell(interaction, markdown(texts.access_changed(grant, kind, subject_id)))

    # --- helpers -----------------------------------------------------------------------------------

    def _where(self, interaction: discord.Interaction) -> tuple[ConversationKey, UserRef]:
        place = place_of(
            interaction.channel,
            channel_id=interaction.channel_id or 0,
            in_guild=interaction.guild_id is not None,
        )
        key = conversation_key(place, interaction.user.id, group_history=self._group_history)
        return key, user_ref(interaction.user)

    async def _tell(self, interaction: discord.Interaction, text: str) -> None:
        # After a deferral the first follow-up replaces the "thinking…" message.
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NONE)

    @asynccontextmanager
    async def _answering(self, interaction: discord.Interaction, *, ephemeral: bool) -> AsyncIterator[None]:
        """The top of a command: failures become one ephemeral line; the task is cancelled on close."""
        with self._in_flight.track():
            try:
                yield
            except ParleyError as exc:
                log.info("/%s refused: %s", _name(interaction), type(exc).__name__)
                await report_failure(interaction, exc.user_message, deferred_ephemeral=ephemeral)
            except Exception:
                log.exception("/%s failed", _name(interaction))
                await report_failure(interaction, texts.GENERIC_FAILURE, deferred_ephemeral=ephemeral)


async def report_failure(interaction: discord.Interaction, text: str, *, deferred_ephemeral: bool) -> None:
    """Tell only the user who ran the command. A public "thinking…" message is removed first, because the
    first follow-up would replace it and stay public."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NONE)
            return
        if not deferred_ephemeral:
            await interaction.delete_original_response()
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NONE)
    except discord.HTTPException as exc:
        log.warning("could not report a failed /%s (HTTP %s, code %s)", _name(interaction), exc.status, exc.code)


def markdown(text: texts.Text) -> str:
    """A core text as Discord Markdown: plain spans with Markdown characters escaped, code spans as code."""
    return _clip(text.render(plain=_escaped, code=_code))


def add_commands(tree: app_commands.CommandTree[Any], commands: SlashCommands) -> None:
    """Register the commands (and an error handler for what fails before a command runs)."""

    @tree.command(name="imagine", description="Draw a picture")
    @app_commands.describe(prompt="What to draw", image="A picture to start from (optional)")
    async def imagine(interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None) -> None:
        await commands.imagine(interaction, prompt, image)

    @tree.command(name="reset", description="Start a new conversation here")
    async def reset(interaction: discord.Interaction) -> None:
        await commands.reset(interaction)

    @tree.command(name="model", description="Show the model of this conversation, or switch to another")
    @app_commands.describe(name="The model to use from now on")
    async def model(interaction: discord.Interaction, name: str | None = None) -> None:
        await commands.model(interaction, name)

    @model.autocomplete("name")
    async def model_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await commands.model_choices(interaction, current)

    @tree.command(name="system", description="Show the system prompt of this conversation, or set it")
    @app_commands.describe(text="The new system prompt, or reset for the default")
    async def system(interaction: discord.Interaction, text: str | None = None) -> None:
        await commands.system(interaction, text)

    @tree.command(name="usage", description="Tokens used by this conversation and by you today")
    async def usage(interaction: discord.Interaction) -> None:
        await commands.usage(interaction)

    @tree.command(name="forget", description="Delete everything this bot stored about you")
    async def forget(interaction: discord.Interaction) -> None:
        await commands.forget(interaction)

    # default_member_permissions: a server shows these only to its administrators (who may open them to
    # other roles); a hint for members' menus, not a check: ADMINS is checked by the core on every call.
    @tree.command(name="stats", description="Users, conversations, tokens and failures today (admins)")
    @app_commands.default_permissions(administrator=True)
    async def stats(interaction: discord.Interaction) -> None:
        await commands.stats(interaction)

    @tree.command(name="grant", description="Give a user or channel access (admins)")
    @app_commands.default_permissions(administrator=True)
    @app_commands.describe(kind="user or chat (a channel)", subject_id="The user's or channel's id")
    async def grant(interaction: discord.Interaction, kind: Literal["user", "chat"], subject_id: str) -> None:
        await commands.set_access(interaction, kind, subject_id, grant=True)

    @tree.command(name="revoke", description="Take access from a user or channel (admins)")
    @app_commands.default_permissions(administrator=True)
    @app_commands.describe(kind="user or chat (a channel)", subject_id="The user's or channel's id")
    async def revoke(interaction: discord.Interaction, kind: Literal["user", "chat"], subject_id: str) -> None:
        await commands.set_access(interaction, kind, subject_id, grant=False)

    @tree.error
    async def on_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        # Reaches here only for failures outside the commands' own handling (unknown command, bad option).
        log.error("slash command /%s failed: %s", _name(interaction), type(error).__name__, exc_info=error)
        await report_failure(interaction, texts.GENERIC_FAILURE, deferred_ephemeral=False)


def _chat_admin(interaction: discord.Interaction) -> ChatAdminCheck:
    """Whether the caller may manage this channel's messages: Discord resolves `member.permissions` in the
    interaction for the channel, overwrites included (API docs, Interaction Object). Outside servers: no."""

    async def check() -> bool:
        permissions = interaction.permissions
        return interaction.guild_id is not None and (permissions.administrator or permissions.manage_messages)

    return check


def verbatim_pieces(text: texts.Text, limit: int) -> list[str]:
    """`text` with every ASCII punctuation mark escaped (Discord shows `\\x` as `x`), so that anyone's words
    (a system prompt) format nothing and link nowhere; in pieces of at most `limit` characters, cut at line
    ends where possible and never inside an escape. One pass: linear in the length."""
    pieces: list[str] = []
    current = ""
    for line in text.render(plain=_escaped_all, code=_code).split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            cut = limit - 1 if _escape_ends(line, limit) else limit
            pieces.append(line[:cut])
            line = line[cut:]
        joined = f"{current}\n{line}" if current else line
        if len(joined) > limit:
            pieces.append(current)
            joined = line
        current = joined
    return [piece for piece in [*pieces, current] if piece.strip()] or ["…"]


def _escape_ends(line: str, cut: int) -> bool:
    """Whether `line[:cut]` ends in a backslash that escapes `line[cut]` (an odd run of them)."""
    run = 0
    while run < cut and line[cut - 1 - run] == "\\":
        run += 1
    return run % 2 == 1


def _escaped_all(text: str) -> str:
    return "".join("\\" + c if c.isascii() and not c.isalnum() and not c.isspace() else c for c in text)


def _escaped(text: str) -> str:
    # Our own facts (numbers, names of kinds, core's user messages): only what would start emphasis,
    # spoilers or code; parentheses and dashes inside a line format nothing.
    return "".join("\\" + c if c in "\\*_~`|" else c for c in text)


def _code(text: str) -> str:
    return f"`{text.replace('`', '')}`"


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_CONTENT_CHARS else text[: MAX_CONTENT_CHARS - 1] + "…"


def _name(interaction: discord.Interaction) -> str:
    return interaction.command.name if interaction.command is not None else "?"
