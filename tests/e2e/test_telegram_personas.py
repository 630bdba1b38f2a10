"""Telegram /system: shown, set (sent upstream from the next turn, kept across /model and /reset), reset to
SYSTEM_PROMPT, forgotten with the user, bounded, and in a shared group changed only by its admins and ADMINS.

Through the real PTB adapter, the fake Bot API and the fake upstream, whose recorded requests show the
system message each turn was sent with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.telegram_harness import BOT_USERNAME, World, reads, telegram_world

pytestmark = pytest.mark.e2e

DEFAULT = "Default prompt."
ADMINS_ONLY = "⚠️ Only admins can change the conversation everyone here shares."
REFUSAL = "Sorry, this bot is private"


def systems(w: World) -> list[str]:
    """The system message of every chat request sent upstream, in order."""
    return [next(str(m["content"]) for m in r.body["messages"] if m["role"] == "system") for r in w.up.chat_requests]


def user_texts(w: World, index: int) -> list[str]:
    return [str(m["content"]) for m in w.up.chat_requests[index].body["messages"] if m["role"] == "user"]


def configured(w: World, **values: Any) -> Any:
    return w.settings.model_copy(update={"system_prompt": DEFAULT, **values})


async def test_system_is_shown_set_used_upstream_kept_across_reset_and_reset_to_the_default(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, dm = w.dm("Ann")
        async with w.bot(configured(w)):
            w.tg.user_sends(dm, ann, "/system")
            default = await w.said(dm, lambda t: t.startswith("System prompt of this conversation (the default)"))
            w.tg.user_sends(dm, ann, "hi")
            await w.said(dm, reads("Echo: hi"))
            w.tg.user_sends(dm, ann, "/system You are a pirate.\nSay arr.")
            await w.said(dm, lambda t: t.startswith("System prompt set (26 characters)"))
            w.tg.user_sends(dm, ann, "/model fake/other")  # the two are independent
            await w.said(dm, lambda t: t.startswith("Model set to fake/other"))
            w.tg.user_sends(dm, ann, "hello")
            await w.said(dm, reads("Echo: hello"))
            w.tg.user_sends(dm, ann, "/reset")
            await w.said(dm, lambda t: t.startswith("New conversation started"))
            w.tg.user_sends(dm, ann, "again")
            await w.said(dm, reads("Echo: again"))
            w.tg.user_sends(dm, ann, "/system")
            custom = await w.said(dm, lambda t: t.startswith("System prompt of this conversation (set with /system"))
            w.tg.user_sends(dm, ann, "/system reset")
            await w.said(dm, lambda t: t.startswith("System prompt back to the default"))
            w.tg.user_sends(dm, ann, "last")
            await w.said(dm, reads("Echo: last"))
        assert DEFAULT in default.text and "You are a pirate.\nSay arr." in custom.text
        pirate = "You are a pirate.\nSay arr."
        assert systems(w) == [DEFAULT, pirate, pirate, DEFAULT]  # from the next turn on, and after /reset
        assert user_texts(w, 2) == ["again"]  # /reset did start a new conversation
        assert w.up.chat_requests[1].body["model"] == "fake/other"


async def test_forget_deletes_the_persona_of_a_dm(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, dm = w.dm("Ann")
        async with w.bot(configured(w)):
            w.tg.user_sends(dm, ann, "/system Be a poet.")
            await w.said(dm, lambda t: t.startswith("System prompt set"))
            w.tg.user_sends(dm, ann, "/forget")
            await w.said(dm, lambda t: t.startswith("Done: I deleted"))
            w.tg.user_sends(dm, ann, "hi")
            await w.said(dm, reads("Echo: hi"))
        assert systems(w) == [DEFAULT]


async def test_an_over_long_system_prompt_is_refused_naming_the_limit(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, dm = w.dm("Ann")
        async with w.bot(configured(w, max_system_prompt_chars=20)):
            w.tg.user_sends(dm, ann, "/system " + "x" * 21)
            await w.said(dm, reads("⚠️ That system prompt is too long (the limit is 20 characters)."))
            w.tg.user_sends(dm, ann, "/system " + "y" * 20)
            await w.said(dm, lambda t: t.startswith("System prompt set (20 characters)"))
            w.tg.user_sends(dm, ann, "hi")
            await w.said(dm, reads("Echo: hi"))
        assert systems(w) == ["y" * 20]


async def test_in_a_shared_group_only_chat_admins_and_admins_change_the_system_prompt(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, carl, root = w.tg.user("Ann"), w.tg.user("Carl"), w.tg.user("Root")
        group = w.tg.supergroup()
        w.tg.promote(group, carl)
        async with w.bot(configured(w, admins=(f"telegram:{root.id}",))):
            w.tg.user_sends(group, ann, "/system Be rude.")
            await w.said(group, reads(ADMINS_ONLY))
            w.tg.user_sends(group, ann, "/system reset")
            await w.tg.wait_for(lambda: w.texts(group).count(ADMINS_ONLY) == 2)
            w.tg.user_sends(group, ann, "/system")  # reading it is for everyone here
            await w.said(group, lambda t: t.startswith("System prompt of this conversation (the default)"))
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} hi")
            await w.said(group, reads("Echo: Ann: hi"))
            w.tg.user_sends(group, carl, "/system Be kind.")
            await w.said(group, lambda t: t.startswith("System prompt set"))
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} hello")
            await w.said(group, reads("Echo: Ann: hello"))
            w.tg.user_sends(group, root, "/system Be terse.")
            await w.tg.wait_for(lambda: sum(t.startswith("System prompt set") for t in w.texts(group)) == 2)
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} bye")
            await w.said(group, reads("Echo: Ann: bye"))
        assert systems(w) == [DEFAULT, "Be kind.", "Be terse."]
        # Ann twice and Carl once were looked up; Root is in ADMINS, and reading asks nobody.
        assert len(w.tg.calls_of("getChatAdministrators")) == 3


async def test_a_stranger_can_neither_read_nor_set_the_system_prompt(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, eve = w.tg.user("Ann"), w.tg.user("Eve")
        group, eve_dm = w.tg.group(), w.tg.private_chat(eve)
        async with w.bot(configured(w, allowed_users=(f"telegram:{ann.id}",))):
            w.tg.user_sends(group, eve, "/system Be evil.")
            w.tg.user_sends(group, eve, "/system")
            w.tg.user_sends(eve_dm, eve, "/system Be evil.")
            w.tg.user_sends(eve_dm, eve, "/system")
            await w.tg.wait_for(lambda: len(w.texts(eve_dm)) == 2)
            await w.idle()
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} hi")
            await w.said(group, reads("Echo: Ann: hi"))
            await w.idle()
        assert w.texts(group) == ["Echo: Ann: hi"]  # silence for Eve in the group
        assert all(REFUSAL in t for t in w.texts(eve_dm))
        assert systems(w) == [DEFAULT]
