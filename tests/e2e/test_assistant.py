"""The assistant end to end: real UpstreamClient against the fake gateway, real SQLite store."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from pathlib import Path

import pytest

from core import (
    Completed,
    ConversationKey,
    Image,
    ImageError,
    InputError,
    ParleyError,
    StreamInterruptedError,
    TextDelta,
    Turn,
    UpstreamAuthError,
    UpstreamUnavailableError,
    UserRef,
    open_assistant,
)
from core.assistant import Assistant
from core.conversation import user_hash
from core.errors import IMAGE_NOT_SHOWN
from tests.e2e.conftest import API_KEY, make_settings
from tests.fakes.clock import FakeWallClock, utc
from tests.fakes.images import png_bytes
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

KEY = ConversationKey(platform="telegram", chat_id="100")
ANN = UserRef(id="7", name="Ann")


def turn(text: str, key: ConversationKey = KEY, user: UserRef = ANN, **extra: object) -> Turn:
    return Turn(conversation=key, user=user, text=text, **extra)  # type: ignore[arg-type]


async def answer(assistant: Assistant, t: Turn) -> tuple[str, Completed]:
    streamed: list[str] = []
    completed: Completed | None = None
    async for event in assistant.reply(t):
        if isinstance(event, TextDelta):
            streamed.append(event.text)
        elif isinstance(event, Completed):
            completed = event
    assert completed is not None
    return "".join(streamed), completed


def contents(upstream: FakeUpstream, index: int = -1) -> list[tuple[str, object]]:
    return [(m["role"], m["content"]) for m in upstream.chat_requests[index].body["messages"]]


async def test_multi_turn_memory_and_final_text(upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.add_reply("Hello Ann! 👋 How can I help?", chunk_chars=3)
    upstream.add_reply("You said hi.")
    settings = make_settings(upstream, tmp_path, system_prompt="Be brief.")
    clock = FakeWallClock(utc(2026, 12, 31, 23, 59, 59))  # stands still: both answers are "today"
    async with open_assistant(settings, clock=clock) as assistant:
        streamed, done = await answer(assistant, turn("hi"))
        assert streamed == done.text == "Hello Ann! 👋 How can I help?"
        await answer(assistant, turn("what did I say?"))
        report = await assistant.usage(KEY, ANN)
    assert contents(upstream) == [
        ("system", "Be brief."),
        ("user", "hi"),
        ("assistant", "Hello Ann! 👋 How can I help?"),
        ("user", "what did I say?"),
    ]
    body = upstream.chat_requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["user"] == user_hash("telegram", "7") and body["user"] != "7"
    assert report.conversation.requests == 2 and report.conversation.total_tokens > 0
    assert report.today.total_tokens == report.conversation.total_tokens


async def test_failure_before_any_text_keeps_the_user_message(upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.add_error(500)
    async with open_assistant(make_settings(upstream, tmp_path)) as assistant:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await answer(assistant, turn("first question"))
        assert "unavailable" in caught.value.user_message
        _, done = await answer(assistant, turn("second question"))
    assert done.text == "Echo: second question"
    assert contents(upstream)[-2:] == [("user", "first question"), ("user", "second question")]


async def test_cut_short_answer_is_stored_incomplete_and_next_turn_works(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_fault("disconnect_after", 9, text="Partial answer that breaks")
    async with open_assistant(make_settings(upstream, tmp_path)) as assistant:
        streamed: list[str] = []
        with pytest.raises(StreamInterruptedError) as caught:
            async for event in assistant.reply(turn("tell me")):
                if isinstance(event, TextDelta):
                    streamed.append(event.text)
        assert caught.value.partial_text == "".join(streamed) == "Partial a"
        await answer(assistant, turn("go on"))
    assert contents(upstream)[-3:] == [("user", "tell me"), ("assistant", "Partial a"), ("user", "go on")]


async def test_stalled_stream_is_cut_short(upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.add_fault("stall_after", 5)
    async with open_assistant(make_settings(upstream, tmp_path, stream_idle_timeout=0.3)) as assistant:
        started = time.monotonic()
        with pytest.raises(StreamInterruptedError) as caught:
            await answer(assistant, turn("slow"))
        assert time.monotonic() - started < 3
        assert caught.value.user_message and "Traceback" not in caught.value.user_message


@pytest.mark.parametrize(
    ("reason", "note"),
    [("length", "The answer hit the length limit."), ("content_filter", "The provider filtered this answer.")],
)
async def test_an_answer_the_upstream_cut_carries_its_reason_and_is_stored_complete(
    upstream: FakeUpstream, tmp_path: Path, reason: str, note: str
) -> None:
    upstream.add_reply("An answer that stops mid", finish_reason=reason)
    async with open_assistant(make_settings(upstream, tmp_path, admins="telegram:7")) as assistant:
        _, done = await answer(assistant, turn("go"))
        assert (done.text, done.finish_reason, done.note) == ("An answer that stops mid", reason, note)
        _, plain = await answer(assistant, turn("and?"))
        stats = await assistant.stats(ANN, "telegram")
    assert plain.note == ""
    assert contents(upstream)[-2:] == [("assistant", "An answer that stops mid"), ("user", "and?")]  # no note
    assert stats.errors_today == 0  # stored complete: the model ended it, nothing failed


async def test_consumer_leaving_early_stores_partial_and_frees_the_lock(upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.add_reply("one two three four five six", chunk_chars=4, tokens_per_second=50)
    async with open_assistant(make_settings(upstream, tmp_path)) as assistant:
        stream = assistant.reply(turn("count"))
        async for event in stream:
            if isinstance(event, TextDelta):
                break
        await stream.aclose()
        await asyncio.wait_for(answer(assistant, turn("again")), timeout=5)
    roles = [role for role, _ in contents(upstream)]
    assert roles[-3:] == ["user", "assistant", "user"]
    assert contents(upstream)[-2][1] == "one "


async def test_one_conversation_in_order_others_in_parallel(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with open_assistant(make_settings(upstream, tmp_path)) as assistant:
        for _ in range(3):
            upstream.add_reply("x" * 20, chunk_chars=2, tokens_per_second=50)  # ~0.2 s each
        await asyncio.gather(*(answer(assistant, turn(f"q{i}")) for i in range(3)))
        # Each request saw every exchange before it.
        assert [len(r.body["messages"]) for r in upstream.chat_requests] == [2, 4, 6]
        assert [r.last_user_text for r in upstream.chat_requests] == ["q0", "q1", "q2"]

        for _ in range(4):
            upstream.add_reply("y" * 30, chunk_chars=2, tokens_per_second=50)  # ~0.3 s each
        started = time.monotonic()
        await asyncio.gather(
            *(answer(assistant, turn("hi", ConversationKey("telegram", str(200 + i)))) for i in range(4))
        )
        assert time.monotonic() - started < 1.0  # four 0.3 s replies overlapped


async def test_reset_starts_fresh_and_keeps_the_old_one(upstream: FakeUpstream, tmp_path: Path) -> None:
    clock = FakeWallClock(utc(2026, 12, 31, 23, 59, 59))  # stands still: both answers are "today"
    async with open_assistant(make_settings(upstream, tmp_path), clock=clock) as assistant:
        await answer(assistant, turn("remember 42"))
        assert await assistant.reset(KEY, ANN) is True
        await answer(assistant, turn("what number?"))
        report = await assistant.usage(KEY, ANN)
    assert [r for r, _ in contents(upstream)] == ["system", "user"]
    assert report.conversation.requests == 1 and report.today.requests == 2


async def test_generated_image_in_a_reply(upstream: FakeUpstream, tmp_path: Path) -> None:
    png = png_bytes()
    encoded = base64.b64encode(png).decode()
    upstream.add_reply(f"Here:\n![a dot](data:image/png;base64,{encoded})\nDone.", chunk_chars=50)
    async with open_assistant(make_settings(upstream, tmp_path)) as assistant:
        _, done = await answer(assistant, turn("draw"))
        await answer(assistant, turn("thanks"))
    assert [i.data for i in done.images] == [png] and done.text == "Here:\n\nDone."
    stored = contents(upstream)[-2][1]
    assert stored == "Here:\n[image: a dot]\nDone." and encoded not in str(upstream.chat_requests[-1].body)


async def test_user_images_are_sent_as_image_url_parts(upstream: FakeUpstream, tmp_path: Path) -> None:
    photo = Image(png_bytes(), "image/png")
    async with open_assistant(make_settings(upstream, tmp_path)) as assistant:
        await answer(assistant, turn("what is this?", images=(photo,)))
    content = contents(upstream)[-1][1]
    assert isinstance(content, list)
    assert content[0] == {"type": "text", "text": "what is this?"}
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_imagine_with_reference_and_failures(upstream: FakeUpstream, tmp_path: Path) -> None:
    png = png_bytes(4, 4)
    upstream.add_reply(f"![generated image](data:image/png;base64,{base64.b64encode(png).decode()})")
    upstream.add_reply("Sorry, I can only describe it.")
    upstream.add_reply("![x](data:image/png;base64,@@@notbase64@@@)")
    reference = Image(png_bytes(), "image/png")
    async with open_assistant(make_settings(upstream, tmp_path)) as assistant:
        done = await assistant.imagine("a red square", conversation=KEY, user=ANN, references=[reference])
        assert [i.data for i in done.images] == [png] and done.text == ""
        with pytest.raises(ImageError, match="no image") as no_image:
            await assistant.imagine("a cat", conversation=KEY, user=ANN)
        assert no_image.value.user_message == "The model did not return an image."
        with pytest.raises(ImageError) as broken:
            await assistant.imagine("a dog", conversation=KEY, user=ANN)
        assert broken.value.user_message == IMAGE_NOT_SHOWN  # one wording for every failed image of an answer
        with pytest.raises(InputError):
            await assistant.imagine("   ", conversation=KEY, user=ANN)
    first = upstream.chat_requests[0].body
    assert first["model"] == "fake/painter" and first["stream"] is False
    parts = first["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "a red square"} and parts[1]["type"] == "image_url"


async def test_imagine_without_image_model(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with open_assistant(make_settings(upstream, tmp_path, image_model=None)) as assistant:
        with pytest.raises(ParleyError) as caught:
            await assistant.imagine("a cat", conversation=KEY, user=ANN)
    assert caught.value.user_message == "Image generation is not set up on this bot."
    assert upstream.chat_requests == []


async def test_models_and_switching(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with open_assistant(make_settings(upstream, tmp_path)) as assistant:
        assert await assistant.models() == ["fake/echo", "fake/other"]
        assert await assistant.set_model(KEY, ANN, "fake/other") == "fake/other"
        with pytest.raises(InputError) as caught:
            await assistant.set_model(KEY, ANN, "nope")
        assert "fake/echo" in caught.value.user_message
        await answer(assistant, turn("hi"))
        assert await assistant.current_model(KEY, ANN) == "fake/other"
    assert upstream.chat_requests[-1].body["model"] == "fake/other"


async def test_oversize_input_costs_nothing(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with open_assistant(make_settings(upstream, tmp_path, max_input_chars=100)) as assistant:
        with pytest.raises(InputError) as caught:
            await answer(assistant, turn("x" * 101))
        with pytest.raises(ImageError):
            await answer(assistant, turn("look", images=(Image(b"not an image", "image/png"),)))
    assert "too long" in caught.value.user_message and upstream.chat_requests == []


async def test_history_survives_a_restart(upstream: FakeUpstream, tmp_path: Path) -> None:
    settings = make_settings(upstream, tmp_path)
    async with open_assistant(settings) as assistant:
        await answer(assistant, turn("my name is Ann"))
    async with open_assistant(settings) as assistant:
        await answer(assistant, turn("who am I?"))
    assert [c for _, c in contents(upstream)][1:] == ["my name is Ann", "Echo: my name is Ann", "who am I?"]


async def test_the_key_never_leaks(upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    upstream.add_error(401, {"error": {"message": f"Incorrect API key provided: {API_KEY}"}})
    upstream.add_fault("error_event_after", 3)
    seen: list[str] = []
    async with open_assistant(make_settings(upstream, tmp_path, llm_base_url=upstream.base_url)) as assistant:
        seen.append(repr(assistant.__dict__))
        for expected in (UpstreamAuthError, StreamInterruptedError):
            with pytest.raises(expected) as caught:
                await answer(assistant, turn("hi"))
            seen += [str(caught.value), repr(caught.value), caught.value.user_message]
    assert upstream.chat_requests[0].authorization == f"Bearer {API_KEY}"
    assert API_KEY not in caplog.text
    assert all(API_KEY not in text for text in seen)
