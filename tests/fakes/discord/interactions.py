"""Application commands, interactions and their webhooks: command sync, INTERACTION_CREATE, callbacks, follow-ups.

Rules kept: a callback within 3 s, only once; follow-ups only after it; 25 autocomplete choices at most.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping

from aiohttp import web

from .gateway import Gateway
from .messages import Messages
from .models import (
    JSON,
    CommandSync,
    FakeChannel,
    FakeInteraction,
    FakeUser,
    MessageFlag,
    MessageType,
    StoredMessage,
    Upload,
)
from .rest import Api, Body, json_response
from .state import ApiError, DiscordState, form_error

ACK_WINDOW_SECONDS = 3.0  # "you must send an initial response within 3 seconds" (docs "Receiving and Responding")
COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
MAX_CHOICES = 25
OPTION_TYPES: dict[type, int] = {str: 3, int: 4, bool: 5, float: 10}
ATTACHMENT_OPTION, USER_OPTION = 11, 6

OptionValue = str | int | float | bool | Upload | FakeUser


def _check_command(command: JSON, where: str) -> None:
    name = command.get("name")
    if not isinstance(name, str) or not COMMAND_NAME.match(name) or name != name.lower():
        raise form_error(f"{where}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    if command.get("type", 1) == 1:
        description = command.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 100:
            raise form_error(f"{where}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    for i, option in enumerate(command.get("options") or []):
        _check_command(option | {"type": 1}, f"{where}.options.{i}")


class InteractionRoutes:
    def __init__(self, state: DiscordState, gateway: Gateway, messages: Messages) -> None:
        self._state = state
        self._gateway = gateway
        self._messages = messages
        self.ack_window_seconds: float | None = ACK_WINDOW_SECONDS

    def register(self, api: Api) -> None:
        for scope in ("/applications/{application_id}", "/applications/{application_id}/guilds/{guild_id}"):
            api.add("GET", f"{scope}/commands", self.list_commands)
            api.add("PUT", f"{scope}/commands", self.overwrite_commands)
            api.add("POST", f"{scope}/commands", self.upsert_command)
        api.add("POST", "/interactions/{interaction_id}/{token}/callback", self.callback)
        hook = "/webhooks/{application_id}/{token}"
        api.add("POST", hook, self.followup)
        for target in ("@original", "{message_id}"):  # @original first: routes match in order
            api.add("GET", f"{hook}/messages/{target}", self.get_webhook_message)
            api.add("PATCH", f"{hook}/messages/{target}", self.edit_webhook_message)
            api.add("DELETE", f"{hook}/messages/{target}", self.delete_webhook_message)

    # --- commands -----------------------------------------------------------------------------------------

    def _scope(self, request: web.Request) -> int | None:
        if request.match_info["application_id"] != str(self._state.application_id):
            raise ApiError(404, 10002, "Unknown Application")
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return None
        if not guild_id.isdigit() or int(guild_id) not in self._state.guilds:
            raise ApiError(404, 10004, "Unknown Guild")
        return int(guild_id)

    def _stored_command(self, command: JSON, scope: int | None, existing: list[JSON]) -> JSON:
        same = next((c for c in existing if c["name"] == command["name"]), None)
        stored = command | {
            "id": same["id"] if same else str(self._state.ids.next()),
            "application_id": str(self._state.application_id),
            "version": str(self._state.ids.next()),
            "type": command.get("type", 1),
            "default_member_permissions": command.get("default_member_permissions"),
            "nsfw": command.get("nsfw", False),
            "options": command.get("options") or [],
        }
        if scope is not None:
            stored["guild_id"] = str(scope)
        return stored

    async def list_commands(self, request: web.Request, body: Body) -> web.Response:
        return json_response(self._state.commands.get(self._scope(request), []))

    async def overwrite_commands(self, request: web.Request, body: Body) -> web.Response:
        scope = self._scope(request)
        payload = body.json
        if not isinstance(payload, list):
            raise form_error("_", "BASE_TYPE_BAD_TYPE", "Must be an array.")
        for i, command in enumerate(payload):
            _check_command(command, str(i))
        existing = self._state.commands.get(scope, [])
        self._state.commands[scope] = [self._stored_command(c, scope, existing) for c in payload]
        self._state.command_syncs.append(CommandSync(scope, tuple(payload)))
        return json_response(self._state.commands[scope])

    async def upsert_command(self, request: web.Request, body: Body) -> web.Response:
        scope = self._scope(request)
        command = body.payload
        _check_command(command, "_")
        existing = self._state.commands.setdefault(scope, [])
        stored = self._stored_command(command, scope, existing)
        existing[:] = [c for c in existing if c["name"] != command["name"]] + [stored]
        self._state.command_syncs.append(CommandSync(scope, (command,)))
        return json_response(stored, status=201)

    # --- sending interactions -------------------------------------------------------------------------

    def _registered(self, name: str, guild_id: int | None) -> JSON | None:
        for scope in (guild_id, None):
            for command in self._state.commands.get(scope, []):
                if command["name"] == name:
                    return command
        return None

    def send(
        self,
        kind: int,
        name: str,
        options: Mapping[str, OptionValue],
        *,
        channel: FakeChannel,
        user: FakeUser,
        focused: str | None = None,
    ) -> FakeInteraction:
        """Dispatch INTERACTION_CREATE: kind 2 (slash command) or 4 (autocomplete, `focused` names the option)."""
        state = self._state
        registered = self._registered(name, channel.guild_id)
        declared = {o["name"]: o.get("type") for o in (registered or {}).get("options", [])}
        attachments: JSON = {}
        users: JSON = {}
        rendered = []
        for option_name, value in options.items():
            if isinstance(value, Upload):
                stored = state.store_attachment(channel.id, value)
                attachments[str(stored.id)] = stored.to_json()
                rendered.append({"name": option_name, "type": ATTACHMENT_OPTION, "value": str(stored.id)})
                continue
            if isinstance(value, FakeUser):
                users[str(value.id)] = value.to_json()
                rendered.append({"name": option_name, "type": USER_OPTION, "value": str(value.id)})
                continue
            option: JSON = {
                "name": option_name,
                "type": declared.get(option_name) or OPTION_TYPES[type(value)],
            }
            option["value"] = value
            if option_name == focused:
                option["focused"] = True
            rendered.append(option)
        data: JSON = {
            "id": registered["id"] if registered else str(state.ids.next()),
            "name": name,
            "type": 1,
        }
        data["options"] = rendered
        if attachments or users:
            data["resolved"] = {k: v for k, v in (("attachments", attachments), ("users", users)) if v}
        if registered and "guild_id" in registered:
            data["guild_id"] = registered["guild_id"]
        interaction = FakeInteraction(
            id=state.ids.next(),
            token=f"aW50ZXJhY3Rpb246{secrets.token_urlsafe(48)}",
            type=kind,
            name=name,
            data=data,
            channel_id=channel.id,
            guild_id=channel.guild_id,
            user=user,
            sent_at=time.monotonic(),
        )
        state.interactions[interaction.id] = interaction
        state.interactions_by_token[interaction.token] = interaction
        self._gateway.dispatch("INTERACTION_CREATE", self._payload(interaction, channel))
        return interaction

    def _payload(self, interaction: FakeInteraction, channel: FakeChannel) -> JSON:
        state = self._state
        payload: JSON = {
            "id": str(interaction.id),
            "application_id": str(state.application_id),
            "type": interaction.type,
            "data": interaction.data,
            "channel_id": str(channel.id),
            "channel": channel.to_json(),
            "token": interaction.token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": state.upload_limit_bytes,
        }
        guild = state.guild_of(channel)
        if guild is None:
            return payload | {
                "user": interaction.user.to_json(),
                "app_permissions": "0",
                "authorizing_integration_owners": {"1": str(interaction.user.id)},
                "context": 1,
            }
        member = state.member_json(guild, interaction.user, with_user=True)
        return payload | {
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "guild_locale": "en-US",
            "member": member | {"permissions": str(guild.permissions_of(interaction.user.id))},
            "app_permissions": str(guild.permissions_of(state.bot.id)),
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
        }

    # --- callbacks -----------------------------------------------------------------------------------------

    async def callback(self, request: web.Request, body: Body) -> web.Response:
        interaction = self._state.interactions.get(int(request.match_info["interaction_id"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise ApiError(404, 10062, "Unknown interaction")
        payload: JSON = body.payload
        interaction.callbacks.append(payload)
        if interaction.acknowledged:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        late = self.ack_window_seconds is not None and time.monotonic() - interaction.sent_at > self.ack_window_seconds
        if late:
            raise ApiError(404, 10062, "Unknown interaction")
        kind = payload.get("type")
        data: JSON = payload.get("data") or {}
        channel = self._state.channel(interaction.channel_id)
        message: StoredMessage | None = None
        if interaction.type == 4 or kind == 8:
            if interaction.type != 4 or kind != 8:
                raise form_error(
                    "type", "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid response type for this interaction"
                )
            choices = data.get("choices")
            if not isinstance(choices, list) or len(choices) > MAX_CHOICES:
                raise form_error("data.choices", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length.")
            interaction.choices = choices
        elif kind == 4:
            message = self._messages.create(
                channel, data, body.files, interaction=interaction, type=MessageType.CHAT_INPUT_COMMAND
            )
        elif kind == 5:
            message = self._messages.create(
                channel,
                {"flags": int(data.get("flags") or 0)},
                {},
                interaction=interaction,
                type=MessageType.CHAT_INPUT_COMMAND,
                extra_flags=MessageFlag.LOADING,
            )
        elif kind not in (6, 7, 9):
            raise form_error("type", "BASE_TYPE_CHOICES", "Value must be one of {4, 5, 6, 7, 8, 9}.")
        interaction.response_type = int(kind)
        if message is not None:
            interaction.original_id = message.id
        self._state.waiters.notify()
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        answer: JSON = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(message and message.ephemeral),
            },
            "resource": {"type": kind},
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = str(message.id)
            answer["resource"]["message"] = self._state.message_json(message)
        return json_response(answer)

    # --- webhooks (follow-ups and the original response) ------------------------------------------------

    def _interaction(self, request: web.Request) -> FakeInteraction:
        interaction = self._state.interactions_by_token.get(request.match_info["token"])
        right_app = request.match_info["application_id"] == str(self._state.application_id)
        if interaction is None or not right_app or not interaction.acknowledged:
            raise ApiError(404, 10015, "Unknown Webhook")
        return interaction

    def _webhook_message(self, request: web.Request) -> StoredMessage:
        interaction = self._interaction(request)
        target = request.match_info.get("message_id")
        wanted = interaction.original_id if target is None else int(target) if target.isdigit() else None
        if wanted is None or wanted not in [interaction.original_id, *interaction.followup_ids]:
            raise ApiError(404, 10008, "Unknown Message")
        return self._state.message(interaction.channel_id, wanted)

    async def followup(self, request: web.Request, body: Body) -> web.Response:
        interaction = self._interaction(request)
        original = self._state.messages.get(interaction.original_id or 0)
        if original is not None and original.loading and not original.deleted:
            # After a deferral the first follow-up replaces the "thinking..." message, keeping its id and the
            # deferral's ephemeral flag (discord-api-docs discussion #4140: it shows as a normal message).
            payload = body.payload | {"flags": int(body.payload.get("flags") or 0) & ~MessageFlag.EPHEMERAL}
            message = self._messages.edit(original, payload, body.files)
        else:
            channel = self._state.channel(interaction.channel_id)
            message = self._messages.create(channel, body.payload, body.files, interaction=interaction)
        interaction.followup_ids.append(message.id)
        if request.query.get("wait", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        return json_response(self._state.message_json(message))

    async def get_webhook_message(self, request: web.Request, body: Body) -> web.Response:
        return json_response(self._state.message_json(self._webhook_message(request)))

    async def edit_webhook_message(self, request: web.Request, body: Body) -> web.Response:
        message = self._messages.edit(self._webhook_message(request), body.payload, body.files)
        return json_response(self._state.message_json(message))

    async def delete_webhook_message(self, request: web.Request, body: Body) -> web.Response:
        self._messages.delete(self._webhook_message(request))
        return web.Response(status=204)
