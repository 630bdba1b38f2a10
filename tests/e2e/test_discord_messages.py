"""The Discord adapter end to end, messages: the real discord.py client, core and SQLite against the fakes.

Every scenario ends by checking that the fake Discord answered no 429 (the `dc` fixture).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.e2e.discord_harness import (
    World,
    bot_says,
    discord_settings,
    final_reply,
    running_bot,
)
from tests.fakes.discord import FakeDiscord, Upload
from tests.fakes.images import png_bytes
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

NO_MENTIONS: dict[str, list[str]] = {"parse": []}


def user_texts(upstream: FakeUpstream, index: int = -1) -> list[str]:
    """The user and system messages of one upstream request, as text."""
    messages = upstream.chat_requests[index].body["messages"]
    return [m["content"] if isinstance(m["content"], str) else str(m["content"]) for m in messages]


async def test_direct_message_streams_by_edits_and_ends_with_the_upstream_text(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    answer = "Here is a longer answer, streamed in small pieces so that it grows on screen. " * 6
    upstream.add_reply(answer, chunk_chars=6, tokens_per_second=150)
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(dm, world.alice, "tell me something long")
        [reply] = await final_reply(dc, dm, answer.strip())
    assert upstream.chat_requests[0].last_user_text == "tell me something long"
    assert reply.edit_count >= 2 and len(reply.versions) == reply.edit_count + 1
    assert all(answer.startswith(version.rstrip("…").rstrip()) for version in reply.versions)
    assert reply.allowed_mentions == [NO_MENTIONS] * len(reply.versions)
    assert reply.noop_edits == 0 and reply.reference_id is None


async def test_server_channel_answers_mentions_and_replies_and_ignores_the_rest(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(world.channel, world.bob, "just chatting among ourselves")
        asked = dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} what is two plus two?", mentions_bot=True)
        first = await bot_says(dc, world.channel, lambda text: text.startswith("Echo:"))
        assert first.content == "Echo: Alice: what is two plus two?"  # shared conversation: names go upstream
        assert first.reference_id == asked.id
        dc.user_sends(world.channel, world.bob, "and times three?", reply_to=first, ping_reply=False)
        second = await bot_says(dc, world.channel, lambda text: "three" in text)
    assert second.content == "Echo: Bob: and times three?"
    assert len(upstream.chat_requests) == 2
    assert all("just chatting" not in text for i in (0, 1) for text in user_texts(upstream, i))
    assert user_texts(upstream)[-3:] == [
        "Alice: what is two plus two?",
        "Echo: Alice: what is two plus two?",
        "Bob: and times three?",
    ]
    assert dc.pings == []


async def test_overheard_lines_are_context_once_and_group_history_user_splits_conversations(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    settings = discord_settings(dc, upstream, tmp_path, group_context_messages=5, group_history="user")
    async with running_bot(dc, settings):
        dc.user_sends(world.channel, world.bob, "the meeting moved to 3pm")
        dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} when is the meeting?", mentions_bot=True)
        await bot_says(dc, world.channel, lambda text: "when is the meeting" in text)
        dc.user_sends(world.channel, world.bob, f"{dc.bot.mention} what did Alice ask?", mentions_bot=True)
        await bot_says(dc, world.channel, lambda text: "what did Alice ask" in text)
    alice_request, bob_request = user_texts(upstream, 0), user_texts(upstream, 1)
    assert any("Bob: the meeting moved to 3pm" in text for text in alice_request)
    assert alice_request[-1] == "when is the meeting?"  # GROUP_HISTORY=user: no name prefix
    # Bob's conversation is his own: neither Alice's turn nor the already-used context line is in it.
    assert not any("meeting" in text for text in bob_request)


async def test_threads_are_separate_conversations(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)) as bot:
        dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} remember the word kiwi", mentions_bot=True)
        await bot_says(dc, world.channel, lambda text: "kiwi" in text)
        thread = dc.add_thread(world.channel, "side topic", owner=world.alice)
        await dc.wait_for(lambda: bot.get_channel(thread.id))
        dc.user_sends(thread, world.alice, f"{dc.bot.mention} which word?", mentions_bot=True)
        await bot_says(dc, thread, lambda text: "which word" in text)
        dc.user_sends(thread, world.alice, "no mention in a thread someone else opened")
        dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} and here?", mentions_bot=True)
        await bot_says(dc, world.channel, lambda text: "and here" in text)
    in_thread, in_channel = user_texts(upstream, 1), user_texts(upstream, 2)
    assert not any("kiwi" in text for text in in_thread)
    assert any("kiwi" in text for text in in_channel) and not any("which word" in text for text in in_channel)
    assert [m.content for m in dc.bot_messages(thread)] == ["Echo: Alice: which word?"]


async def test_auto_thread_opens_a_thread_for_each_new_conversation(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    settings = discord_settings(dc, upstream, tmp_path, discord_auto_thread=True)
    async with running_bot(dc, settings):
        asked = dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} plan a picnic", mentions_bot=True)
        thread_id = asked.id  # a thread started from a message takes its id
        await dc.wait_for(lambda: dc.calls_to("POST /channels/{channel_id}/messages/{message_id}/threads"))
        await bot_says(dc, thread_id, lambda text: "plan a picnic" in text)
        dc.user_sends(thread_id, world.alice, "with sandwiches")  # no mention needed in the bot's thread
        await bot_says(dc, thread_id, lambda text: "sandwiches" in text)
    thread = dc.channel(thread_id)
    assert (thread.name, thread.parent_id, thread.owner_id) == ("plan a picnic", world.channel.id, dc.bot.id)
    assert dc.bot_messages(world.channel) == []
    assert "Alice: plan a picnic" in user_texts(upstream)  # one conversation in the thread


async def test_a_5000_character_answer_is_split_under_2000_with_nothing_lost(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    paragraphs = [f"Paragraph {n}: " + " ".join(f"word{n}x{i}" for i in range(40)) for n in range(14)]
    answer = "\n\n".join(paragraphs)
    assert len(answer) > 5000
    upstream.add_reply(answer, chunk_chars=40, tokens_per_second=400)
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(dm, world.alice, "write a lot")

        def complete() -> bool:
            shown = " ".join(m.content for m in dc.bot_messages(dm))
            return shown.split() == answer.split()

        await dc.wait_for(complete, 10.0)
    messages = dc.bot_messages(dm)
    assert len(messages) >= 3 and all(len(m.content) <= 2000 for m in messages)
    assert all(m.content.strip() for m in messages)


async def test_attached_images_reach_the_upstream_as_image_url_parts(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    picture = png_bytes(4, 3)
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(dm, world.alice, "what is in this picture?", attachments=[Upload("cat.png", picture)])
        await bot_says(dc, dm, lambda text: "what is in this picture?" in text)
        dc.user_sends(dm, world.alice, "and this?", attachments=[Upload("notes.txt", b"plain text", "text/plain")])
        await bot_says(dc, dm, lambda text: "and this?" in text)
    content = upstream.chat_requests[0].body["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "what is in this picture?"}
    assert content[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(picture).decode()
    # Not an image: read as a document (tests/e2e/test_discord_documents.py), not sent as an image part.
    assert upstream.chat_requests[1].body["messages"][-1]["content"] == (
        "[file: notes.txt]\n```\nplain text\n```\n\nand this?"
    )


async def test_images_in_an_answer_are_uploaded_as_files_with_the_text_as_caption(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    picture = png_bytes(6, 4)
    encoded = base64.b64encode(picture).decode()
    upstream.add_reply(f"Here is the chart.\n\n![chart](data:image/png;base64,{encoded})", chunk_chars=50)
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)) as bot:
        dc.user_sends(dm, world.alice, "draw a chart")
        message = await dc.wait_for(lambda: next((m for m in dc.bot_messages(dm) if m.attachments), None))
        await dc.wait_for(lambda: bot.handlers_in_flight == 0)  # a preview it replaced is deleted last
    [attachment] = message.attachments
    assert (attachment.data, attachment.filename, attachment.description) == (picture, "image-1.png", "chart")
    # The text is the caption, or (when it was already on screen before the image arrived) stays above it.
    assert [m.content for m in dc.bot_messages(dm)] in (["Here is the chart."], ["Here is the chart.", ""])
    assert not any("base64" in version for m in dc.messages(dm) for version in m.versions)


async def test_upstream_failures_give_one_clear_line_and_the_bot_keeps_serving(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    settings = discord_settings(dc, upstream, tmp_path, llm_max_retries=0)
    dm = dc.dm_channel(world.alice)
    upstream.add_error(503)
    upstream.add_fault("disconnect_after", 12)
    async with running_bot(dc, settings):
        dc.user_sends(dm, world.alice, "first")
        failed = await bot_says(dc, dm, lambda text: "unavailable" in text)
        dc.user_sends(dm, world.alice, "second")
        cut = await bot_says(dc, dm, lambda text: "cut short" in text)
        dc.user_sends(dm, world.alice, "third")
        await bot_says(dc, dm, lambda text: text == "Echo: third")
    assert failed.content == "-# ⚠️ The model service is unavailable right now. Please try again later."
    assert cut.content.startswith("The quick b") and "fake error" not in cut.content
    assert not any("fake error" in text or "Traceback" in text for text in dc.all_sent_text())


async def test_everyone_and_mentions_in_model_output_ping_nobody(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    role = dc.add_role(world.guild, "staff")
    hostile = f"@everyone @here <@{world.bob.id}> <@&{role.id}> look at this, everyone!"
    upstream.add_reply(hostile, chunk_chars=5, tokens_per_second=100)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} shout", mentions_bot=True)
        reply = await bot_says(dc, world.channel, lambda text: text.endswith("everyone!"))
    assert dc.pings == []
    assert reply.allowed_mentions and all(sent == NO_MENTIONS for sent in reply.allowed_mentions)


async def test_a_gateway_reconnect_mid_conversation_loses_nothing(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    answer = "A slow answer that is still streaming while the gateway reconnects. " * 3
    upstream.add_reply(answer, chunk_chars=4, tokens_per_second=50)
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(dm, world.alice, "talk slowly")
        await dc.wait_for(lambda: dc.bot_messages(dm))  # the reply has started
        await dc.force_reconnect()
        assert dc.bot_messages(dm)[0].content != answer.strip(), "the reconnect came after the answer"
        await final_reply(dc, dm, answer.strip())
        await dc.force_reconnect("close", wait=False)
        dc.user_sends(dm, world.alice, "sent while the bot was away")  # replayed on RESUME
        await bot_says(dc, dm, lambda text: text == "Echo: sent while the bot was away")
        await dc.wait_for(lambda: len(dc.resumes) == 2)
    assert len(dc.identifies) == 1
    assert "talk slowly" in user_texts(upstream)  # the same conversation went on


async def test_an_answer_in_flight_is_cancelled_cleanly_on_close(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_reply("never finished " * 50, chunk_chars=3, tokens_per_second=20)
    dm = dc.dm_channel(world.alice)
    settings = discord_settings(dc, upstream, tmp_path, shutdown_grace_seconds=0.2)
    async with running_bot(dc, settings) as bot:
        dc.user_sends(dm, world.alice, "start something long")
        await dc.wait_for(lambda: dc.bot_messages(dm))
        assert bot.handlers_in_flight == 1
    assert bot.handlers_in_flight == 0 and bot.is_closed()
