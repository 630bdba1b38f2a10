"""Telegram identity: a message sent on behalf of a chat (a channel, or an anonymous admin as the group) is
from that chat, not from the placeholder user Telegram puts in `from` for all of them (Channel_Bot,
GroupAnonymousBot). History, usage (what the daily quota counts), access and /forget follow the chat.

Through the real PTB adapter and the fake Bot API; each test failed before issue 11's fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.telegram_harness import BOT_USERNAME, reads, telegram_world

pytestmark = pytest.mark.e2e


async def test_channels_speaking_through_channel_bot_keep_separate_histories_usage_and_forget(
    tmp_path: Path,
) -> None:
    async with telegram_world(tmp_path, group_history="user") as w:
        group, news, sports = w.tg.supergroup("Club"), w.tg.channel("News"), w.tg.channel("Sports")
        async with w.bot():
            w.tg.chat_sends(group, news, f"@{BOT_USERNAME} news secret")
            await w.said(group, lambda t: t == "Echo: news secret")
            for text in ("sports here", "again"):
                w.tg.chat_sends(group, sports, f"@{BOT_USERNAME} {text}")
                await w.said(group, reads(f"Echo: {text}"))
            w.tg.chat_sends(group, news, "/usage")
            usage = await w.said(group, lambda t: t.startswith("Model:"))
            w.tg.chat_sends(group, news, "/forget")
            await w.said(group, lambda t: t.startswith("Done:"))
            w.tg.chat_sends(group, sports, f"@{BOT_USERNAME} still there?")
            await w.said(group, lambda t: t == "Echo: still there?")
        histories = [[m["content"] for m in r.body["messages"] if m["role"] == "user"] for r in w.up.chat_requests]
        assert histories[1] == ["sports here"]  # not the news channel's message
        assert "in 1 requests" in usage.text  # News alone, not everyone behind Channel_Bot
        assert histories[-1] == ["sports here", "again", "still there?"]  # News's /forget left Sports alone
        assert w.up.chat_requests[0].body["user"] != w.up.chat_requests[1].body["user"]


async def test_access_lists_name_the_channel_and_an_anonymous_admin_is_the_group(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        group, news, sports = w.tg.supergroup("Club"), w.tg.channel("News"), w.tg.channel("Sports")
        allowed = (f"telegram:{news.id}", f"telegram:{group.id}")  # the group itself, as a sender
        async with w.bot(w.settings.model_copy(update={"allowed_users": allowed})):
            w.tg.chat_sends(group, sports, f"@{BOT_USERNAME} let me in")
            w.tg.chat_sends(group, news, f"@{BOT_USERNAME} hello")
            await w.said(group, lambda t: t == "Echo: News: hello")
            w.tg.chat_sends(group, group, f"@{BOT_USERNAME} from the admins")
            await w.said(group, lambda t: t == "Echo: Club: from the admins")
            await w.idle()
        assert w.texts(group) == ["Echo: News: hello", "Echo: Club: from the admins"]  # Sports: silence
