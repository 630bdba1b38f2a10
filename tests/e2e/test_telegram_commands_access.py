"""Telegram, tried as an attacker: every command passes the access check a message does, a shared group's
conversation changes only by its admins or ADMINS, and a stranger's photos are never downloaded.

Through the real PTB adapter and the fake Bot API; each test failed before issue 11's fixes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.telegram_harness import BOT_USERNAME, World, telegram_world
from tests.fakes.images import png_bytes

pytestmark = pytest.mark.e2e

REFUSAL = "Sorry, this bot is private"
ADMINS_ONLY = "Only admins can change the conversation everyone here shares."


def configured(w: World, **values: Any) -> Any:
    return w.settings.model_copy(update=values)


def user_texts(w: World) -> list[list[str]]:
    """The user messages of every chat request sent upstream, in order."""
    return [[str(m["content"]) for m in r.body["messages"] if m["role"] == "user"] for r in w.up.chat_requests]


async def test_stranger_in_group_cannot_switch_model_reset_or_read_usage(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, eve = w.tg.user("Ann"), w.tg.user("Eve")
        group, eve_dm = w.tg.group(), w.tg.private_chat(eve)
        settings = configured(w, allowed_users=(f"telegram:{ann.id}",))
        async with w.bot(settings):
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} remember mango")
            await w.said(group, lambda t: t == "Echo: Ann: remember mango")
            for command in ("/model fake/other", "/reset", "/usage", "/model", "/imagine a cat", "/help", "/start"):
                w.tg.user_sends(group, eve, command)
            for command in ("/model fake/other", "/reset", "/usage", "/imagine a cat"):
                w.tg.user_sends(eve_dm, eve, command)
            await w.tg.wait_for(lambda: len(w.texts(eve_dm)) == 4)
            await w.idle()
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} what fruit?")
            await w.said(group, lambda t: t == "Echo: Ann: what fruit?")
            await w.idle()
        assert w.texts(group) == ["Echo: Ann: remember mango", "Echo: Ann: what fruit?"]  # silence for Eve
        assert len(w.texts(eve_dm)) == 4 and all(REFUSAL in t for t in w.texts(eve_dm))  # one refusal each
        assert user_texts(w)[-1] == ["Ann: remember mango", "Ann: what fruit?"]  # not reset
        assert [r.body["model"] for r in w.up.chat_requests] == ["fake/echo", "fake/echo"]  # no /imagine either


async def test_in_a_shared_group_only_chat_admins_and_admins_switch_model_or_reset(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, carl, root = w.tg.user("Ann"), w.tg.user("Carl"), w.tg.user("Root")
        group = w.tg.supergroup()
        w.tg.promote(group, carl)
        async with w.bot(configured(w, admins=(f"telegram:{root.id}",))):
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} remember mango")
            await w.said(group, lambda t: t == "Echo: Ann: remember mango")
            w.tg.user_sends(group, ann, "/model fake/other")
            w.tg.user_sends(group, ann, "/reset")
            await w.tg.wait_for(lambda: w.texts(group).count(f"⚠️ {ADMINS_ONLY}") == 2)
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} what fruit?")
            await w.said(group, lambda t: t == "Echo: Ann: what fruit?")
            w.tg.user_sends(group, root, "/reset")
            await w.said(group, lambda t: t.startswith("New conversation started"))
            w.tg.user_sends(group, carl, "/model fake/other")  # the new conversation's model
            await w.said(group, lambda t: t == "Model set to fake/other for this conversation.")
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} fresh start")
            await w.said(group, lambda t: t == "Echo: Ann: fresh start")
        assert user_texts(w)[1] == ["Ann: remember mango", "Ann: what fruit?"]  # Ann changed nothing
        assert user_texts(w)[2] == ["Ann: fresh start"] and w.up.chat_requests[2].body["model"] == "fake/other"
        # Ann twice and Carl once were looked up; Root is in ADMINS, so Telegram was not asked.
        assert len(w.tg.calls_of("getChatAdministrators")) == 3


async def test_members_reset_their_own_conversation_when_group_history_is_per_user(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, group_history="user") as w:
        ann = w.tg.user("Ann")
        group = w.tg.group()
        async with w.bot():
            w.tg.user_sends(group, ann, "/reset")
            await w.said(group, lambda t: t.startswith("New conversation started"))
        assert w.tg.calls_of("getChatAdministrators") == []


async def test_an_anonymous_admin_may_reset_a_shared_group_but_a_channel_speaking_there_may_not(
    tmp_path: Path,
) -> None:
    async with telegram_world(tmp_path) as w:
        group, channel = w.tg.supergroup("Club"), w.tg.channel("News")
        async with w.bot():
            w.tg.chat_sends(group, channel, "/reset")
            await w.said(group, lambda t: t == f"⚠️ {ADMINS_ONLY}")
            w.tg.chat_sends(group, group, "/reset")
            await w.said(group, lambda t: t.startswith("New conversation started"))
        assert len(w.texts(group)) == 2
        assert w.tg.calls_of("getChatAdministrators") == []  # both answered from the message alone


async def test_a_strangers_photos_albums_and_quotes_are_never_downloaded(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, eve = w.tg.user("Ann"), w.tg.user("Eve")
        group, eve_dm, ann_dm = w.tg.group(), w.tg.private_chat(eve), w.tg.private_chat(ann)
        photos = [w.tg.add_file(png_bytes(20 + n, 20)) for n in range(4)]
        async with w.bot(configured(w, allowed_users=(f"telegram:{ann.id}",))):
            w.tg.user_sends(group, eve, photo=photos[0], caption=f"@{BOT_USERNAME} look", media_group_id="a1")
            w.tg.user_sends(group, eve, photo=photos[1], media_group_id="a1")
            shared = w.tg.user_sends(group, ann, photo=photos[2], caption="our cat")  # not for the bot
            w.tg.user_sends(group, eve, f"@{BOT_USERNAME} what is this?", reply_to=shared)
            w.tg.user_sends(eve_dm, eve, photo=photos[3], caption="what is this?")
            w.tg.user_sends(eve_dm, eve, photo=photos[3], caption="/imagine make it blue")
            own = w.tg.user_sends(eve_dm, eve, photo=photos[3])
            w.tg.user_sends(eve_dm, eve, "/imagine redo this", reply_to=own)
            await w.tg.wait_for(lambda: len(w.texts(eve_dm)) == 4)
            await w.idle()
            assert w.tg.calls_of("getFile") == [] and w.tg.downloads == []
            w.tg.user_sends(ann_dm, ann, photo=photos[2], caption="and now?")
            await w.said(ann_dm, lambda t: t == "Echo: and now?")
        assert w.texts(group) == [] and all(REFUSAL in t for t in w.texts(eve_dm))
        assert len(w.tg.downloads) == 1  # the allowed user's photo: downloads are counted


async def test_a_stranger_cannot_make_the_bot_speak_in_a_group(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, eve = w.tg.user("Ann"), w.tg.user("Eve")
        group, eve_dm = w.tg.group(), w.tg.private_chat(eve)
        async with w.bot(configured(w, allowed_users=(f"telegram:{ann.id}",))):
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} hi")
            answer = await w.said(group, lambda t: t == "Echo: Ann: hi")
            w.tg.user_sends(group, eve, f"/frobnicate@{BOT_USERNAME}")
            w.tg.user_sends(group, eve, sticker="🙂", reply_to=answer)
            w.tg.user_sends(eve_dm, eve, sticker="🙂")
            await w.said(eve_dm, lambda t: REFUSAL in t)
            await w.idle()
        assert w.texts(group) == ["Echo: Ann: hi"]  # each would have cost the group's message budget
        assert len(w.texts(eve_dm)) == 1
