"""Telegram access and privacy: refusals (a DM answered once, a group left in silence), admin commands,
/forget leaving nothing behind, and flood control answered before anything goes upstream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from core.store.tables import Base
from tests.e2e.telegram_harness import BOT_USERNAME, World, reads, telegram_world
from tests.fakes.clock import FakeWallClock, utc

pytestmark = pytest.mark.e2e


def configured(w: World, **values: Any) -> Any:
    return w.settings.model_copy(update=values)


async def test_strangers_get_one_refusal_in_a_dm_and_silence_in_a_group(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, bob, root = w.tg.user("Ann"), w.tg.user("Bob"), w.tg.user("Root")
        bob_dm, root_dm, group = w.tg.private_chat(bob), w.tg.private_chat(root), w.tg.group()
        settings = configured(w, allowed_users=(f"telegram:{ann.id}",), admins=(f"telegram:{root.id}",))
        async with w.bot(settings):
            w.tg.user_sends(group, bob, f"@{BOT_USERNAME} hello")
            w.tg.user_sends(bob_dm, bob, "hello")
            await w.said(bob_dm, lambda t: "private" in t)
            w.tg.user_sends(bob_dm, bob, "/stats")
            await w.said(bob_dm, lambda t: "for the bot's admins" in t)
            w.tg.user_sends(root_dm, root, f"/grant user {bob.id}")
            await w.said(root_dm, lambda t: t == f"User {bob.id} now has access.")
            w.tg.user_sends(bob_dm, bob, "thanks")
            await w.said(bob_dm, lambda t: t == "Echo: thanks")
            w.tg.user_sends(root_dm, root, "/stats")
            stats = await w.said(root_dm, lambda t: t.startswith("Users:"))
            w.tg.user_sends(root_dm, root, f"/revoke user {bob.id}")
            await w.said(root_dm, lambda t: t == f"User {bob.id} no longer has access.")
            w.tg.user_sends(group, bob, f"@{BOT_USERNAME} still there?")
            await w.idle()
        assert w.texts(group) == []
        assert len(w.texts(bob_dm)) == 3  # the refusal, the admins-only answer, the echo
        assert "Users: 1\nConversations: 1\n" in stats.text
        assert [m["content"] for r in w.up.chat_requests for m in r.body["messages"] if m["role"] == "user"] == [
            "thanks"
        ]


async def test_forget_deletes_everything_of_the_user(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, bob = w.tg.user("Ann"), w.tg.user("Bob")
        ann_dm, bob_dm = w.tg.private_chat(ann), w.tg.private_chat(bob)
        async with w.bot():
            w.tg.user_sends(ann_dm, ann, "my secret is kiwi-4242")
            await w.said(ann_dm, lambda t: t == "Echo: my secret is kiwi-4242")
            w.tg.user_sends(bob_dm, bob, "bob was here")
            await w.said(bob_dm, lambda t: t == "Echo: bob was here")
            w.tg.user_sends(ann_dm, ann, "/forget")
            done = await w.said(ann_dm, lambda t: t.startswith("Done:"))
            texts = await _stored_texts(w)
            w.tg.user_sends(ann_dm, ann, "what was my secret?")
            await w.said(ann_dm, lambda t: t == "Echo: what was my secret?")
        assert "2 messages, 1 conversations" in done.text
        assert not any("kiwi-4242" in text or "Ann" in text for text in texts)
        assert "bob was here" in texts and "Echo: bob was here" in texts
        last = w.up.chat_requests[-1].body["messages"]
        assert [(m["role"], m["content"]) for m in last if m["role"] != "system"] == [("user", "what was my secret?")]


async def _stored_texts(w: World) -> list[str]:
    """Every text and JSON value in the database (numbers and times are values, never searched as text)."""
    engine = create_async_engine(w.settings.database_url)
    try:
        async with engine.connect() as connection:
            return [
                str(value)
                for table in Base.metadata.sorted_tables
                for row in (await connection.execute(select(table))).all()
                for value in row
                if isinstance(value, str | list | dict)
            ]
    finally:
        await engine.dispose()


async def test_a_flood_is_refused_before_the_upstream(tmp_path: Path) -> None:
    clock = FakeWallClock(utc(2026, 11, 23, 12, 0, 10))  # 10 s into a minute, and it stays there
    async with telegram_world(tmp_path, user_requests_per_minute=2) as w:
        ann, chat = w.dm("Ann")
        async with w.bot(clock=clock):
            for text in ("one", "two"):
                w.tg.user_sends(chat, ann, text)
                await w.said(chat, reads(f"Echo: {text}"))
            w.tg.user_sends(chat, ann, "three")
            refusal = await w.said(chat, lambda t: "too many messages" in t)
        assert refusal.text.endswith("You have sent too many messages; try again in 50 seconds.")
        assert len(w.up.chat_requests) == 2
