"""`/system`: the system prompt of a conversation, shown, set (kept across /reset) or back to SYSTEM_PROMPT.

`Personas` is what `Assistant.system_prompt` runs; the prompt lives in the store's `personas` table, keyed
like a conversation. Knows no chat platform; imports core's access, store, settings and texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.access import Gatekeeper
from core.conversation import ChatAdminCheck, ConversationKey, UserRef
from core.errors import InputError
from core.inputs import is_blank
from core.settings import Settings
from core.store import Store
from core.texts import system_prompt_too_long

RESET_WORD = "reset"  # `/system reset`: a prompt of just this word is taken as the command


@dataclass(frozen=True, slots=True)
class SystemPrompt:
    """What /system did: `text` is the prompt the conversation's turns are sent with from now on, `custom`
    whether it was set with /system (else the default)."""

    text: str
    custom: bool
    change: Literal["shown", "set", "reset"]


class Personas:
    """Shows and changes the persona of a conversation key, with the same checks as /model and /reset."""

    def __init__(self, *, settings: Settings, store: Store, gate: Gatekeeper) -> None:
        self._settings = settings
        self._store = store
        self._gate = gate

    async def command(
        self, conversation: ConversationKey, user: UserRef, text: str, chat_admin: ChatAdminCheck | None
    ) -> SystemPrompt:
        """No `text` (or only invisible characters): show. "reset": back to SYSTEM_PROMPT. Else set `text`.

        Showing needs access; changing needs `Gatekeeper.require_steward` (in a shared group: its admins or
        ADMINS). Over MAX_SYSTEM_PROMPT_CHARS: InputError naming the limit, nothing stored.
        """
        text = text.strip()
        if is_blank(text):
            await self._gate.require(conversation, user)
            record = await self._store.active_conversation(
                conversation, user, model=self._settings.chat_model, system_prompt=self._settings.system_prompt
            )
            return SystemPrompt(record.system_prompt, record.custom_prompt, "shown")
        await self._gate.require_steward(conversation, user, chat_admin)
        if text.lower() == RESET_WORD:
            await self._store.clear_persona(conversation, system_prompt=self._settings.system_prompt)
            return SystemPrompt(self._settings.system_prompt, False, "reset")
        limit = self._settings.max_system_prompt_chars
        if len(text) > limit:
            raise InputError("system prompt too long", user_message=system_prompt_too_long(limit))
        await self._store.set_persona(conversation, user, text, personal=not conversation.is_shared)
        return SystemPrompt(text, True, "set")
