"""The Telegram bot in groups: silent unless addressed, replies to its question, shared or per-user history,
overheard context (GROUP_CONTEXT_MESSAGES) and forum topics as separate conversations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.telegram_harness import BOT_USERNAME, telegram_world

pytestmark = pytest.mark.e2e


async def test_group_message_without_mention_is_ignored_and_stored_nowhere(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        alice = w.tg.user("Alice")
        group = w.tg.group()
        async with w.bot():
            w.tg.user_sends(group, alice, "just chatting among humans")
            w.tg.user_sends(group, alice, f"@{BOT_USERNAME} hello")
            await w.said(group, lambda t: t == "Echo: Alice: hello")
        assert w.texts(group) == ["Echo: Alice: hello"]  # names go upstream
        [request] = w.up.chat_requests
        assert "just chatting" not in str(request.body)


async def test_mention_and_reply_to_the_bot_are_answered_as_replies(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        alice, bob = w.tg.user("Alice"), w.tg.user("Bob")
        group = w.tg.supergroup()
        async with w.bot():
            question = w.tg.user_sends(group, alice, f"@{BOT_USERNAME} what is 2+2?")
            first = await w.said(group, lambda t: t == "Echo: Alice: what is 2+2?")
            follow_up = w.tg.user_sends(group, bob, "and 3+3?", reply_to=first)
            second = await w.said(group, lambda t: t == "Echo: Bob: and 3+3?")
            w.tg.user_sends(group, bob, "replying to Alice, not the bot", reply_to=question["message_id"])
            w.tg.user_sends(group, alice, f"thanks @{BOT_USERNAME}")
            await w.said(group, lambda t: t.startswith("Echo: Alice: thanks"))
        assert first.reply_to_message_id == question["message_id"]
        assert second.reply_to_message_id == follow_up["message_id"]
        assert "replying to Alice" not in " ".join(w.texts(group))
        assert w.up.chat_requests[-1].last_user_text.endswith("thanks")  # the mention itself is dropped


async def test_commands_in_groups_are_answered_only_when_meant_for_this_bot(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        alice = w.tg.user("Alice")
        group = w.tg.group()
        async with w.bot():
            w.tg.user_sends(group, alice, "/help@some_other_bot")
            w.tg.user_sends(group, alice, "/frobnicate")
            w.tg.user_sends(group, alice, f"/help@{BOT_USERNAME}")
            await w.said(group, lambda t: "/reset" in t)
            w.tg.user_sends(group, alice, f"/frobnicate@{BOT_USERNAME}")
            await w.said(group, lambda t: t.startswith("I don't know that command"))
        assert len(w.texts(group)) == 2


async def test_shared_group_history_names_each_speaker(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, group_history="chat") as w:
        alice, bob = w.tg.user("Alice"), w.tg.user("Bob")
        group = w.tg.group()
        async with w.bot():
            w.tg.user_sends(group, alice, f"@{BOT_USERNAME} my number is 7")
            await w.said(group, lambda t: t == "Echo: Alice: my number is 7")
            w.tg.user_sends(group, bob, f"@{BOT_USERNAME} what was Alice's number?")
            await w.said(group, lambda t: t == "Echo: Bob: what was Alice's number?")
        contents = [m["content"] for m in w.up.chat_requests[1].body["messages"][1:]]
        assert contents == [
            "Alice: my number is 7",
            "Echo: Alice: my number is 7",
            "Bob: what was Alice's number?",
        ]


async def test_per_user_group_history_keeps_users_apart(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, group_history="user") as w:
        alice, bob = w.tg.user("Alice"), w.tg.user("Bob")
        group = w.tg.group()
        async with w.bot():
            w.tg.user_sends(group, alice, f"@{BOT_USERNAME} my number is 7")
            await w.said(group, lambda t: t == "Echo: my number is 7")
            w.tg.user_sends(group, bob, f"@{BOT_USERNAME} what is my number?")
            await w.said(group, lambda t: t == "Echo: what is my number?")
            w.tg.user_sends(group, alice, f"@{BOT_USERNAME} and mine?")
            await w.said(group, lambda t: t == "Echo: and mine?")
        bob_request, alice_request = (
            w.up.chat_requests[1].body["messages"],
            w.up.chat_requests[2].body["messages"],
        )
        assert [m["content"] for m in bob_request[1:]] == ["what is my number?"]
        assert [m["content"] for m in alice_request[1:]] == [
            "my number is 7",
            "Echo: my number is 7",
            "and mine?",
        ]


async def test_overheard_lines_are_given_as_context_once(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, group_context_messages=2) as w:
        alice, bob = w.tg.user("Alice"), w.tg.user("Bob")
        group = w.tg.group()
        async with w.bot():
            w.tg.user_sends(group, alice, "line one")
            w.tg.user_sends(group, bob, "line two")
            w.tg.user_sends(group, alice, "line three")
            await w.idle()
            w.tg.user_sends(group, bob, f"@{BOT_USERNAME} summarise")
            await w.said(group, lambda t: t == "Echo: Bob: summarise")
            w.tg.user_sends(group, bob, f"@{BOT_USERNAME} again")
            await w.said(group, lambda t: t == "Echo: Bob: again")
        first, second = (r.body["messages"] for r in w.up.chat_requests)
        context = [m["content"] for m in first if m["role"] == "system"][1]
        assert context.endswith("Bob: line two\nAlice: line three") and "line one" not in context
        assert first[-1]["content"] == "Bob: summarise"
        assert not any("line three" in str(m["content"]) for m in second[-2:])
        assert w.texts(group) == ["Echo: Bob: summarise", "Echo: Bob: again"]


async def test_forum_topics_are_separate_conversations(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        alice = w.tg.user("Alice")
        forum = w.tg.supergroup("Forum", is_forum=True)
        cooking = w.tg.create_topic(forum, "Cooking", creator=alice)
        travel = w.tg.create_topic(forum, "Travel", creator=w.tg.bot)  # so its posts "reply" to the bot
        async with w.bot():
            w.tg.user_sends(forum, alice, "no mention, just a topic post", message_thread_id=cooking)
            w.tg.user_sends(forum, alice, "a travel post for humans", message_thread_id=travel)
            w.tg.user_sends(forum, alice, f"@{BOT_USERNAME} pasta tips", message_thread_id=cooking)
            await w.said(forum, lambda t: t == "Echo: Alice: pasta tips", thread_id=cooking)
            w.tg.user_sends(forum, alice, f"@{BOT_USERNAME} visa tips", message_thread_id=travel)
            await w.said(forum, lambda t: t == "Echo: Alice: visa tips", thread_id=travel)
        assert w.texts(forum, thread_id=cooking) == ["Echo: Alice: pasta tips"]
        assert w.texts(forum, thread_id=travel) == ["Echo: Alice: visa tips"]
        travel_request = w.up.chat_requests[1].body["messages"]
        assert [m["content"] for m in travel_request[1:]] == ["Alice: visa tips"]
