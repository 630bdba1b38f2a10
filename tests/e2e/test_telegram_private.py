"""The Telegram bot in private chats: streamed replies (drafts or edits), memory, long answers, odd kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.telegram_harness import telegram_world

pytestmark = pytest.mark.e2e

PROSE = (
    "Tides rise and fall twice a day because the Moon pulls the oceans toward it, and the Earth turns "
    "beneath that bulge. The Sun adds a smaller pull of its own, "
    "so the biggest tides come at new and full moon."
)


async def test_dm_reply_streams_in_a_draft_and_the_final_text_equals_the_upstream_text(
    tmp_path: Path,
) -> None:
    async with telegram_world(tmp_path) as w:
        w.up.add_reply(PROSE, chunk_chars=4, tokens_per_second=80)
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "why are there tides?")
            [message] = await w.final(chat, PROSE)
        drafts = w.tg.drafts(chat)
        assert len(drafts) >= 2 and len({d.draft_id for d in drafts}) == 1
        assert all(PROSE.startswith(d.text) for d in drafts)
        assert w.tg.calls_of("editMessageText") == [] and len(w.tg.calls_of("sendMessage")) == 1
        assert message.reply_to_message_id is None


async def test_refused_drafts_fall_back_to_edits_and_stay_off_in_that_chat(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        w.tg.draft_error = "Bad Request: TEXTDRAFT_PEER_INVALID"
        w.up.add_reply(PROSE, chunk_chars=4, tokens_per_second=80)
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "why are there tides?")
            [message] = await w.final(chat, PROSE)
            assert message.edit_count >= 1 and message.history[-1] == PROSE  # sent, then edited in place
            w.tg.user_sends(chat, user, "again")
            await w.final(chat, "Echo: again")
        assert len(w.tg.calls_of("sendMessageDraft")) == 1  # refused once, never tried again here
        assert w.texts(chat) == [PROSE, "Echo: again"]


async def test_draft_mode_tries_drafts_on_every_reply(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, telegram_stream_mode="draft") as w:
        w.tg.draft_error = "Bad Request: TEXTDRAFT_PEER_INVALID"
        user, chat = w.dm("Ann")
        async with w.bot():
            for count, text in enumerate(("one", "two"), start=1):
                w.up.add_reply(PROSE, chunk_chars=8, tokens_per_second=60)
                w.tg.user_sends(chat, user, text)

                def is_answer(text: str, count: int = count) -> bool:
                    return text == PROSE and len(w.texts(chat)) == count

                await w.said(chat, is_answer)
        assert len(w.tg.calls_of("sendMessageDraft")) == 2
        assert w.texts(chat) == [PROSE, PROSE]


async def test_edit_mode_streams_by_edits_and_never_drafts(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, telegram_stream_mode="edit") as w:
        w.up.add_reply(PROSE, chunk_chars=4, tokens_per_second=80)
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "why are there tides?")
            [message] = await w.final(chat, PROSE)
        assert w.tg.calls_of("sendMessageDraft") == []
        assert message.edit_count >= 1 and all(PROSE.startswith(text) for text in message.history)


async def test_memory_across_turns_and_reset(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "my name is Ann")
            await w.said(chat, lambda t: t == "Echo: my name is Ann")
            w.tg.user_sends(chat, user, "who am I?")
            await w.said(chat, lambda t: t == "Echo: who am I?")
            w.tg.user_sends(chat, user, "/reset")
            await w.said(chat, lambda t: t.startswith("New conversation started"))
            w.tg.user_sends(chat, user, "and now?")
            await w.said(chat, lambda t: t == "Echo: and now?")
        second, third = w.up.chat_requests[1].body["messages"], w.up.chat_requests[2].body["messages"]
        assert [m["content"] for m in second[1:]] == ["my name is Ann", "Echo: my name is Ann", "who am I?"]
        assert [m["role"] for m in third] == ["system", "user"] and third[1]["content"] == "and now?"


@pytest.mark.parametrize(
    ("mode", "draft_error"),
    [("auto", None), ("auto", "Bad Request: TEXTDRAFT_PEER_INVALID"), ("edit", None)],
    ids=["drafts", "drafts-refused", "edits"],
)
async def test_a_12000_character_answer_is_split_and_nothing_is_lost(
    tmp_path: Path, mode: str, draft_error: str | None
) -> None:
    paragraphs = [f"Paragraph {n}: " + " ".join(f"word{n}x{i}" for i in range(95)) for n in range(14)]
    answer = "\n\n".join(paragraphs)
    assert len(answer) >= 12_000
    async with telegram_world(tmp_path, telegram_stream_mode=mode) as w:
        w.tg.draft_error = draft_error
        w.up.add_reply(answer, chunk_chars=200, tokens_per_second=40)  # ~1.5 s of streaming
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "write a lot")
            await w.said(chat, lambda t: t.endswith("word13x94"))
            await w.idle()
        texts = w.texts(chat)
        assert len(texts) >= 3 and all(len(t) <= 4096 for t in texts)
        assert " ".join(texts).split() == answer.split()
        assert w.tg.calls_of("deleteMessage") == []


async def test_two_users_at_once_get_their_own_answers(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann, bob = w.tg.user("Ann"), w.tg.user("Bob")
        ann_chat, bob_chat = w.tg.private_chat(ann), w.tg.private_chat(bob)
        ann_text = "Ann's answer " + "a" * 100
        bob_text = "Bob's answer " + "b" * 100
        w.up.add_reply(ann_text, chunk_chars=5, tokens_per_second=40)
        w.up.add_reply(bob_text, chunk_chars=5, tokens_per_second=40)
        async with w.bot():
            w.tg.user_sends(ann_chat, ann, "question from Ann")
            w.tg.user_sends(bob_chat, bob, "question from Bob")
            await w.said(ann_chat, lambda t: t in (ann_text, bob_text))
            await w.said(bob_chat, lambda t: t in (ann_text, bob_text))
        [first, second] = w.up.chat_requests
        by_question = {first.last_user_text: ann_text, second.last_user_text: bob_text}
        assert w.texts(ann_chat) == [by_question["question from Ann"]]
        assert w.texts(bob_chat) == [by_question["question from Bob"]]
        assert all(len(r.body["messages"]) == 2 for r in w.up.chat_requests)  # no cross-talk upstream either
        ann_drafts, bob_drafts = w.tg.drafts(ann_chat), w.tg.drafts(bob_chat)
        assert ann_drafts and bob_drafts
        assert ann_drafts[0].time < bob_drafts[-1].time and bob_drafts[0].time < ann_drafts[-1].time  # overlapped


async def test_formatting_heavy_answer_arrives_formatted(tmp_path: Path) -> None:
    markdown = (
        "# Plan\n\n**Bold** and _italic_ and `code` and [a link](https://example.com/a_(b)).\n\n"
        "- one *two* three\n- > quoted\n\n```python\nprint('<&>')\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    async with telegram_world(tmp_path) as w:
        w.up.add_reply(markdown, chunk_chars=3, tokens_per_second=100)
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "format something")
            message = await w.said(chat, lambda t: "print('<&>')" in t)
        types = {entity.type for entity in message.entities}
        assert {"bold", "italic", "code", "pre", "text_link"} <= types
        assert "**" not in message.text and "```" not in message.text
        assert w.tg.errors() == []


async def test_a_refused_formatting_falls_back_to_plain_text_once(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        w.up.add_reply("**Bold** claim with `code` in it.")
        user, chat = w.dm("Ann")
        w.tg.fail_next("sendMessage", 400, "Bad Request: can't parse entities: unsupported start tag")
        async with w.bot():
            w.tg.user_sends(chat, user, "format something")
            [message] = await w.final(chat, "Bold claim with code in it.")
            w.tg.user_sends(chat, user, "next")
            await w.said(chat, lambda t: t == "Echo: next")
        assert message.entities == ()
        assert [c.status for c in w.tg.calls_of("sendMessage")] == [400, 200, 200]


async def test_edited_forwarded_sticker_and_voice_messages_never_crash_the_bot(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        user, author = w.tg.user("Ann"), w.tg.user("Zed")
        chat = w.tg.private_chat(user)
        async with w.bot():
            w.tg.user_sends(chat, user, sticker="😀")
            await w.said(chat, lambda t: t.startswith("I can read text and photos"))
            w.tg.user_sends(chat, user, voice=b"OggS\x00fake voice")
            await w.said(chat, lambda t: "can't listen to voice messages" in t)  # TRANSCRIBE_MODEL is unset
            w.tg.user_sends(chat, user, "hello there")
            await w.said(chat, lambda t: t == "Echo: hello there")
            w.tg.user_sends(chat, user, "hello there, edited", edited=True)
            await w.said(chat, lambda t: t.startswith("I only see new messages"))
            w.tg.user_sends(chat, user, "a forwarded thought", forward_origin=author)
            await w.said(chat, lambda t: t == "Echo: a forwarded thought")
        assert [r.last_user_text for r in w.up.chat_requests] == ["hello there", "a forwarded thought"]
        assert not any("went wrong" in text for text in w.texts(chat))
