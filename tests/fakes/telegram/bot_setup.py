"""Bot API methods about the bot itself rather than messages: getMe, commands, webhook, getChat, callbacks."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from .objects import AdminStatus, FakeUser, bad_request
from .params import Params
from .state import World

_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class SetupApi:
    """Handlers (by canonical method name) that only read or change the `World`."""

    def __init__(self, world: World) -> None:
        self.world = world

    def handlers(self) -> list[tuple[str, Callable[[Params], Any]]]:
        return [
            ("getMe", self.get_me),
            ("setMyCommands", self.set_commands),
            ("getMyCommands", self.get_commands),
            ("deleteMyCommands", self.delete_commands),
            ("setWebhook", self.set_webhook),
            ("deleteWebhook", self.delete_webhook),
            ("getWebhookInfo", self.get_webhook_info),
            ("answerCallbackQuery", lambda p: True),
            ("getChat", self.get_chat),
            ("getChatAdministrators", self.get_chat_administrators),
        ]

    def get_me(self, p: Params) -> dict[str, Any]:
        return {
            **self.world.bot.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    @staticmethod
    def _commands_key(p: Params) -> str:
        scope = p.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True) + "|" + (p.opt_text("language_code") or "")

    def set_commands(self, p: Params) -> bool:
        commands = p.require("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("commands must be a list of at most 100 BotCommand")
        for command in commands:
            if not isinstance(command, Mapping) or not _COMMAND.fullmatch(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.world.commands[self._commands_key(p)] = [dict(c) for c in commands]
        return True

    def get_commands(self, p: Params) -> list[dict[str, str]]:
        return self.world.commands.get(self._commands_key(p), [])

    def delete_commands(self, p: Params) -> bool:
        self.world.commands.pop(self._commands_key(p), None)
        return True

    def set_webhook(self, p: Params) -> bool:
        url = p.opt_text("url") or ""
        if url and not url.startswith(("https://", "http://")):
            raise bad_request("bad webhook: invalid webhook URL specified")
        secret = p.opt_text("secret_token")
        if secret is not None and not _SECRET.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        if p.flag("drop_pending_updates"):
            self.world.drop_updates()
        allowed = p.get("allowed_updates")
        if isinstance(allowed, list):
            self.world.allowed_updates = [str(kind) for kind in allowed]
        webhook = self.world.webhook
        webhook.url, webhook.secret_token = url, secret
        webhook.allowed_updates = self.world.allowed_updates
        webhook.max_connections = p.opt_integer("max_connections") or 40
        self.world.notify()
        return True

    def delete_webhook(self, p: Params) -> bool:
        if p.flag("drop_pending_updates"):
            self.world.drop_updates()
        self.world.webhook.url = ""
        self.world.notify()
        return True

    def get_webhook_info(self, p: Params) -> dict[str, Any]:
        webhook = self.world.webhook
        info: dict[str, Any] = {
            "url": webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.world.pending_updates()),
        }
        if webhook.url:
            info["max_connections"] = webhook.max_connections
            if webhook.allowed_updates:
                info["allowed_updates"] = webhook.allowed_updates
        return info

    def get_chat(self, p: Params) -> dict[str, Any]:
        chat = self.world.chat(p.require("chat_id"))
        gifts = dict.fromkeys(
            ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription", "gifts_from_channels"),
            False,
        )
        return {**chat.to_api(), "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}

    def get_chat_administrators(self, p: Params) -> list[dict[str, Any]]:
        """Bot API: "a list of administrators in a chat, which aren't bots"; works for any member bot."""
        chat = self.world.chat(p.require("chat_id"))
        if not chat.is_group:
            raise bad_request("there are no administrators in the private chat")
        found = self.world.admins.get(chat.id, {}).values()
        return [_chat_member(user, status) for user, status in found if not user.is_bot]


def _chat_member(user: FakeUser, status: AdminStatus) -> dict[str, Any]:
    """ChatMemberOwner / ChatMemberAdministrator with every field the Bot API marks as always present."""
    member: dict[str, Any] = {"status": status, "user": user.to_api(), "is_anonymous": False}
    if status == "creator":
        return member
    granted = dict.fromkeys(_ADMIN_RIGHTS, True)
    withheld = dict.fromkeys(("can_be_edited", "can_promote_members", *_STORY_RIGHTS), False)
    return member | granted | withheld


_ADMIN_RIGHTS = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_change_info", "can_invite_users", "can_pin_messages",
)  # fmt: skip
_STORY_RIGHTS = ("can_post_stories", "can_edit_stories", "can_delete_stories")
