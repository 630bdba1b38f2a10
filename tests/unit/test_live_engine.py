"""LiveReply against a fake platform in virtual time: pacing, 429s, formatting fallback, reasoning, images,
errors, drafts and load. Every test also checks the platform never said 429 or "message is not modified"."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bots.telegram_adapter.formatting import markdown_to_entities
from core.errors import (
    FormattingRejectedError,
    StreamInterruptedError,
    SurfaceError,
    SurfaceRateLimitError,
    UpstreamUnavailableError,
)
from core.events import Completed, Event, Image, TextDelta
from core.live import Budget, LiveReply, Profile, ReplyResult
from core.live.markdown import render_final
from core.live.split import count_units
from tests.fakes.live_surface import TELEGRAM_RULES, FakePlatform, FakeSurface, run_virtual, stream
from tests.loop_steps import longest_loop_step
from tests.profiles import DISCORD, TELEGRAM_GROUP, TELEGRAM_PRIVATE

PNG = Image(b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/png", "a cat")


def words(count: int, *, seed: str = "word") -> list[str]:
    return [f"{seed}{i} " for i in range(count)]


def reply(
    surface: FakeSurface, events: AsyncIterator[Event], *, budget: Budget | None = None, **options: object
) -> ReplyResult:
    async def main() -> ReplyResult:
        live = LiveReply(surface, budget=budget or Budget(30), **options)  # type: ignore[arg-type]
        return await live.run(events)

    result = run_virtual(main())
    assert surface.platform.rate_limits == 0
    assert surface.platform.not_modified == 0
    assert surface.platform.too_long == 0
    return result


def squash(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("profile", [TELEGRAM_PRIVATE, TELEGRAM_GROUP, DISCORD])
def test_a_thousand_tokens_at_100_per_second_edit_at_most_once_per_interval(profile: Profile) -> None:
    surface = FakeSurface(profile, is_group=profile is TELEGRAM_GROUP)
    tokens = words(1000, seed="w")[:1000]
    tokens = [t[:4] + " " for t in tokens]  # 5 characters a token: 5,000 characters, 3 Discord messages
    result = reply(surface, stream(tokens, interval=0.01))
    duration = 10.0
    assert len(surface.calls("edit")) <= duration / profile.edit_interval_seconds + 2
    assert result.is_complete
    assert squash("".join(surface.visible_texts())) == squash("".join(tokens))


def test_the_first_text_goes_out_with_the_first_token() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)

    async def slow_start() -> AsyncIterator[Event]:
        await asyncio.sleep(3.0)
        async for event in stream(words(20)):
            yield event

    reply(surface, slow_start())
    assert surface.first_send_at == pytest.approx(3.01)
    assert surface.typing_calls >= 1  # shown from the start, before any text


def test_a_429_in_the_middle_is_waited_out_and_loses_nothing() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    surface.fail_next("edit", SurfaceRateLimitError(4.0))
    surface.fail_next("edit", SurfaceRateLimitError(2.0))
    tokens = words(600)
    result = reply(surface, stream(tokens, interval=0.01))
    assert result.is_complete
    assert squash("".join(surface.visible_texts())) == squash("".join(tokens))
    edits = [call.at for call in surface.calls("edit")]
    assert edits[1] - edits[0] >= 4.0 and edits[2] - edits[1] >= 2.0  # nothing between a 429 and its end


def test_a_429_on_the_final_edit_does_not_downgrade_the_formatting() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    for _ in range(3):
        surface.fail_next("send", SurfaceRateLimitError(1.0))
    reply(surface, stream(["**bold**"], interval=0.01))
    (only,) = surface.messages.values()
    assert only == render_final("**bold**", "entities", markdown_to_entities) and only.entities


def test_unchanged_text_is_never_sent_again() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    tokens = ["Hello"] + ["   "] * 300 + ["\n"] * 100 + [" world"]
    reply(surface, stream(tokens, interval=0.01))
    assert len(surface.calls("edit")) == 1  # only "Hello world"; whitespace alone changes nothing on screen


def test_a_rejected_formatting_falls_back_to_plain_text_and_the_stream_completes() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE, rejects_entities=True)
    tokens = [f"**bold {i}** and `code`\n\n" for i in range(400)]
    result = reply(surface, stream(tokens, interval=0.01))
    assert result.is_complete
    assert surface.platform.rejected_formatting >= 1
    assert all(not rendered.entities for rendered in surface.messages.values())
    expected = squash(render_final("".join(tokens), "entities", markdown_to_entities).text)
    assert squash("".join(surface.visible_texts())) == expected


def test_an_error_mid_stream_keeps_the_text_and_adds_a_note() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    tokens = words(300)
    error = StreamInterruptedError("gateway closed", partial_text="".join(tokens[:150]))
    result = reply(surface, stream(tokens, error=error, error_after=150))
    *_, last = surface.messages.values()
    assert last.text.endswith("⚠️ " + error.user_message)
    assert squash("".join(surface.visible_texts())) == squash("".join(tokens[:150]) + "⚠️" + error.user_message)
    assert not result.is_complete and result.error_message == error.user_message
    assert "gateway" not in "".join(surface.visible_texts())  # the detail is for logs, not for users


def test_an_error_before_any_text_shows_just_the_note() -> None:
    surface = FakeSurface(DISCORD)
    result = reply(surface, stream(words(10), error=UpstreamUnavailableError("503 from x"), error_after=0))
    assert surface.visible_texts() == ["⚠️ " + UpstreamUnavailableError.default_message]
    assert not result.is_complete


def test_a_stream_that_ends_without_completed_is_cut_short() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    result = reply(surface, stream(words(30), complete=False))
    assert surface.visible_texts()[-1].endswith(StreamInterruptedError.default_message)
    assert not result.is_complete


@pytest.mark.parametrize("profile", [TELEGRAM_PRIVATE, DISCORD])
@pytest.mark.parametrize(
    ("reason", "note"),
    [("length", "The answer hit the length limit."), ("content_filter", "The provider filtered this answer.")],
)
def test_an_answer_the_upstream_cut_ends_with_a_short_note(profile: Profile, reason: str, note: str) -> None:
    surface = FakeSurface(profile)
    tokens = words(40)
    result = reply(surface, stream(tokens, finish_reason=reason))
    [shown] = surface.visible_texts()
    assert squash(shown) == squash("".join(tokens) + "⚠️" + note)
    assert result.is_complete and result.text == "".join(tokens)  # the note is ours, not the answer's


def test_a_filtered_answer_without_text_shows_just_the_note() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    result = reply(surface, stream([], finish_reason="content_filter"))
    assert surface.visible_texts() == ["⚠️ The provider filtered this answer."]  # not "empty answer"
    assert result.is_complete


@pytest.mark.parametrize("reason", ["stop", "tool_calls", "end_turn", ""])
def test_a_normal_end_adds_no_note(reason: str) -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    reply(surface, stream(["All ", "done."], finish_reason=reason))
    assert surface.visible_texts() == ["All done."]


def test_the_completed_text_is_authoritative() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    result = reply(surface, stream(["Draft ", "text"], final_text="Final **text**"))
    assert surface.visible_texts() == ["Final text"]
    assert result.text == "Final **text**"


def test_inline_image_data_never_reaches_the_chat() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    image = "![cat](data:image/png;base64," + "iVBORw0KGgo" * 2000 + ")"
    source = "Look: " + image + " nice."
    tokens = [source[i : i + 7] for i in range(0, len(source), 7)]
    reply(surface, stream(tokens, interval=0.001, final_text="Look:  nice.", images=(PNG,)))
    sent = [call.rendered.text for call in surface.platform.calls if call.rendered is not None]
    assert sent and not any("base64" in text or "iVBOR" in text for text in sent)


def test_images_take_the_text_as_caption_when_it_fits() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    result = reply(surface, stream(["Here ", "is ", "**your** cat."], images=(PNG,)))
    assert surface.messages == {}  # the streamed text became the caption
    ((images, caption),) = surface.images.values()
    assert images == (PNG,) and caption is not None and caption.text == "Here is your cat."
    assert len(result.handles) == 1 and result.images_sent == 1


def test_a_caption_over_the_limit_continues_as_a_message() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    text = " ".join(f"Sentence number {i} about the picture." for i in range(80))
    reply(surface, stream([], final_text=text, images=(PNG,)))
    ((_, caption),) = surface.images.values()
    assert caption is not None and count_units(caption.text, "utf16") <= TELEGRAM_PRIVATE.caption_max_units
    assert squash(caption.text + "".join(surface.visible_texts()[:-1])) == squash(text)
    first_message = next(iter(surface.messages))
    assert int(first_message) > int(next(iter(surface.images)))  # the rest comes after the images


def test_images_follow_a_long_text_already_shown() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    tokens = words(400)
    reply(surface, stream(tokens, images=(PNG,)))
    ((_, caption),) = surface.images.values()
    assert caption is None
    assert squash("".join(surface.visible_texts())) == squash("".join(tokens))


def test_status_mode_shows_thinking_then_edits_it_into_the_answer() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    reasoning = [f"secret step {i}. " for i in range(300)]
    reply(surface, stream(words(100), reasoning=reasoning), show_reasoning="status")
    first = surface.calls("send")[0]
    assert first.rendered is not None and first.rendered.text == "💭 Thinking…"
    assert len(surface.calls("send")) == 1  # the same message became the answer
    assert "secret" not in "".join(c.rendered.text for c in surface.platform.calls if c.rendered)


def test_full_mode_quotes_the_reasoning_apart_and_collapses_it() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    reasoning = [f"step {i}. " for i in range(300)]
    tokens = words(100, seed="answer")
    reply(surface, stream(tokens, reasoning=reasoning), show_reasoning="full")
    thought, answer = surface.messages.values()
    assert [e.type for e in thought.entities] == ["expandable_blockquote"]
    assert "step 299." in thought.text and "answer" not in thought.text
    assert "step" not in answer.text and squash(answer.text) == squash("".join(tokens))
    live_quotes = [c.rendered for c in surface.calls("send") + surface.calls("edit") if c.rendered]
    assert any(r.entities and r.entities[0].type == "blockquote" for r in live_quotes)


def test_full_mode_on_discord_uses_subtext() -> None:
    surface = FakeSurface(DISCORD)
    reply(surface, stream(words(20), reasoning=["think *hard*\n", "then more"]), show_reasoning="full")
    thought, _ = surface.messages.values()
    assert thought.text == "-# think \\*hard\\*\n-# then more"


def test_off_mode_shows_nothing_but_typing_while_the_model_thinks() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    reasoning = [f"step {i}. " for i in range(1200)]  # 12 s of reasoning
    reply(surface, stream(words(50), reasoning=reasoning), show_reasoning="off")
    assert surface.typing_calls >= 3
    assert surface.calls("send")[0].at >= 12.0


def test_a_failing_typing_indicator_never_breaks_the_reply() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    surface.fail_next("typing", SurfaceError("chat action refused"))
    surface.fail_next("typing", RuntimeError("network hiccup"))
    result = reply(surface, stream(words(900), reasoning=["x"] * 900), show_reasoning="off")
    assert result.is_complete and surface.typing_calls >= 2


def test_drafts_stream_without_edits_and_the_final_messages_carry_everything() -> None:
    surface = FakeSurface(replace(TELEGRAM_PRIVATE, supports_draft=True))
    tokens = [f"S{i}. " for i in range(2000)]  # 20 s, about 12,000 characters
    result = reply(surface, stream(tokens, interval=0.01))
    assert surface.calls("edit") == [] and len(surface.drafts) >= 5
    assert surface.draft_text is None  # replaced by the real message
    assert squash("".join(surface.visible_texts())) == squash("".join(tokens))
    assert result.is_complete and len(result.handles) == len(surface.messages) >= 3
    sends = surface.calls("send")
    for draft in surface.calls("draft"):  # nothing sent is drafted again
        earlier = [s.rendered.text for s in sends if s.at <= draft.at and s.rendered]
        assert draft.rendered is not None
        assert not any(text[-40:] in draft.rendered.text for text in earlier)


def test_a_draft_is_refreshed_before_it_expires() -> None:
    surface = FakeSurface(replace(TELEGRAM_PRIVATE, supports_draft=True))

    async def pause() -> AsyncIterator[Event]:
        yield TextDelta("Wait for it")
        await asyncio.sleep(65)
        yield TextDelta(" done")
        async for event in stream([], final_text="Wait for it done"):
            yield event

    reply(surface, pause())
    gaps = [b.at - a.at for a, b in zip(surface.calls("draft"), surface.calls("draft")[1:], strict=False)]
    assert gaps and max(gaps) < 30


def test_a_long_group_reply_keeps_telegrams_twenty_messages_a_minute() -> None:
    # 90 s of streaming (virtual time): long enough that editing at the private-chat pace would send
    # more than 20 messages and edits in a minute, which the fake's group rule answers with 429.
    surface = FakeSurface(TELEGRAM_GROUP, is_group=True)
    tokens = words(900, seed="g")
    result = reply(surface, stream(tokens, interval=0.1))  # reply() demands zero 429s
    assert result.is_complete
    assert squash("".join(surface.visible_texts())) == squash("".join(tokens))
    assert len(surface.calls("edit")) >= 20  # it kept streaming, at the group's pace


def test_under_overload_replies_get_fewer_edits_but_every_first_and_final_text() -> None:
    platform = FakePlatform(rules=replace(TELEGRAM_RULES, global_per_second=5))  # an overloaded bot
    budget = Budget(5)
    surfaces = [FakeSurface(TELEGRAM_PRIVATE, platform=platform, chat_key=f"chat-{i}") for i in range(30)]
    texts = [[f"r{n}w{i} " for i in range(400)] for n in range(30)]

    async def main() -> list[ReplyResult]:
        return await asyncio.gather(
            *(LiveReply(s, budget=budget).run(stream(t, interval=0.01)) for s, t in zip(surfaces, texts, strict=True))
        )

    results = run_virtual(main())
    assert platform.rate_limits == 0 and platform.not_modified == 0
    assert all(r.is_complete for r in results)
    for surface, tokens in zip(surfaces, texts, strict=True):
        assert squash("".join(surface.visible_texts())) == squash("".join(tokens))
    first_sends = sorted(s.calls("send")[0].at for s in surfaces)
    assert first_sends[-1] <= 30 / 5 + 0.5  # every reply showed text before anyone's second edit round
    edits = [len(s.calls("edit")) for s in surfaces]
    assert max(edits) <= 4  # uncontended, each would make about 5
    assert max(edits) - min(edits) <= 2  # and they share fairly


def test_a_plain_text_rejected_as_formatting_is_a_real_error() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    surface.fail_next("send", FormattingRejectedError("weird"))
    surface.fail_next("send", FormattingRejectedError("weird"))
    with pytest.raises(FormattingRejectedError):
        run_virtual(LiveReply(surface, budget=Budget(30)).run(stream(["plain"])))


def test_a_broken_event_stream_propagates_and_leaves_no_task_behind() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)

    async def broken() -> AsyncIterator[Event]:
        yield TextDelta("partial")
        await asyncio.sleep(2)
        raise ValueError("bug")

    async def main() -> int:
        with pytest.raises(ValueError, match="bug"):
            await LiveReply(surface, budget=Budget(30)).run(broken())
        await asyncio.sleep(0)
        return len(asyncio.all_tasks())

    assert run_virtual(main()) == 1


def test_visible_text_is_never_longer_than_the_limit_mid_stream() -> None:
    surface = FakeSurface(DISCORD)
    tokens = ["```python\n"] + [f"print({i})  # {'x' * 20}\n" for i in range(400)]
    reply(surface, stream(tokens, interval=0.01))
    for call in surface.calls("edit") + surface.calls("send"):
        assert call.rendered is not None and len(call.rendered.text) <= 2000
        assert call.rendered.text.count("```") % 2 == 0  # every preview closes its code block
    assert all(re.match(r"```python\n", text) for text in (r.text for r in surface.messages.values()))


def test_a_message_outgrown_mid_stream_gets_its_final_form_at_once_and_keeps_it() -> None:
    surface = FakeSurface(TELEGRAM_PRIVATE)
    tokens = [f"**w{i}** " if i % 10 == 0 else f"w{i} " for i in range(2000)]  # about 13,000 characters
    reply(surface, stream(tokens, interval=0.01))
    sends = surface.calls("send")
    assert len(sends) >= 3
    first_id = next(iter(surface.messages))
    first_edits = [c for c in surface.calls("edit") if c.message_id == first_id]
    assert first_edits[-1].at < sends[1].at  # sealed (formatted) before the next message appeared
    assert first_edits[-1].rendered is not None and first_edits[-1].rendered.entities
    assert first_edits[-1].at < 15  # while the stream (20 s) was still running


def test_a_surface_failure_closes_the_event_source_at_once() -> None:
    # An assistant reply holds its conversation's lock until it ends: a failed reply must end it at once.
    surface = FakeSurface(TELEGRAM_PRIVATE)
    surface.fail_next("send", SurfaceError("chat not found"))
    closed: list[bool] = []

    async def source() -> AsyncIterator[Event]:
        try:
            yield TextDelta("hello")
            await asyncio.sleep(60)
            yield TextDelta(" never")
        finally:
            closed.append(True)

    async def main() -> list[bool]:
        with pytest.raises(SurfaceError):
            await LiveReply(surface, budget=Budget(30)).run(source())
        return list(closed)

    assert run_virtual(main()) == [True]


async def test_a_megabyte_of_hostile_markdown_never_holds_the_event_loop_for_long() -> None:
    """The final layout of a huge answer runs in a worker thread: laid out on the loop, this answer held it
    for about 10 s in one step (bench/live_loop_step.py --inline); in the thread, under 50 ms here. The bound
    is loose for a loaded CI machine and still 10x under the inline figure."""
    text = "](" * 500_000
    profile = replace(DISCORD, edit_interval_seconds=0.001, supports_draft=False)
    surface = FakeSurface(profile, platform=FakePlatform(speed=0.001))

    async def events() -> AsyncIterator[object]:
        for start in range(0, len(text), 4096):
            yield TextDelta(text[start : start + 4096])
        yield Completed(text, ())

    with longest_loop_step() as longest:
        result = await LiveReply(surface, budget=Budget(10_000)).run(events())
    assert result.is_complete and len(result.handles) > 500
    assert longest.seconds < 1.0
