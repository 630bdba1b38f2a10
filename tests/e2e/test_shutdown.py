"""Graceful shutdown (SHUTDOWN_GRACE_SECONDS): no new work, replies in flight finish within the grace time,
the rest end stored as incomplete with what the user saw."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from core.store.tables import Message
from tests.e2e.telegram_harness import telegram_world

pytestmark = pytest.mark.e2e

GRACE = 1.0
LONG = "never finished " * 60  # 900 characters at 3 per chunk and 20 chunks/s: 15 s


async def stored_answers(database_url: str) -> dict[str, bool]:
    """Assistant texts and whether each is marked incomplete."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = select(Message.text, Message.incomplete).where(Message.role == "assistant")
            rows = await connection.execute(query)
            return {row.text: row.incomplete for row in rows}
    finally:
        await engine.dispose()


async def test_telegram_replies_in_flight_finish_within_the_grace_then_end_incomplete(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, shutdown_grace_seconds=GRACE, telegram_stream_mode="edit") as w:
        ann, bob, cleo = w.tg.user("Ann"), w.tg.user("Bob"), w.tg.user("Cleo")
        short = "finished in time " * 6  # ~0.5 s of streaming left when the stop comes
        w.up.add_reply(short, chunk_chars=3, tokens_per_second=60)
        w.up.add_reply(LONG, chunk_chars=3, tokens_per_second=20)
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(w.bot())
            w.tg.user_sends(w.tg.private_chat(ann), ann, "short one")
            await w.said(w.tg.private_chat(ann), lambda t: t.startswith("finished"))
            w.tg.user_sends(w.tg.private_chat(bob), bob, "long one")
            await w.said(w.tg.private_chat(bob), lambda t: t.startswith("never"))
            stopping = time.monotonic()
            stop = asyncio.create_task(stack.aclose())  # as SIGTERM does
            await asyncio.sleep(GRACE / 4)
            w.tg.user_sends(w.tg.private_chat(cleo), cleo, "too late")  # during the grace time
            await stop
        took = time.monotonic() - stopping
        assert [u["message"]["text"] for u in w.tg.pending_updates] == ["too late"]  # left for the next process
        assert GRACE - 0.2 < took < GRACE + 2.0
        answers = await stored_answers(w.settings.database_url)
        assert answers[short] is False  # finished within the grace time, stored complete
        [(cut, incomplete)] = [(text, flag) for text, flag in answers.items() if text.startswith("never")]
        assert incomplete is True and 0 < len(cut) < len(LONG)
        assert w.texts(w.tg.private_chat(ann)) == [short.strip()]
        assert [r.last_user_text for r in w.up.chat_requests] == ["short one", "long one"]
        # The cut reply's last edit may be in flight when it is cancelled: a hang-up, not a bug of the fake.
        w.tg.internal_errors[:] = [e for e in w.tg.internal_errors if not isinstance(e, ConnectionResetError)]
