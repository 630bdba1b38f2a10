"""Tools at their edges, end to end through the real assistant, store and `show_reply`: a reply failing after
its tool rounds, refusals that are and are not about tools, a drawing against the user's limits, and a
huge result against the next turn's context budget. Helpers are test_tools.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core import Budget, Turn, open_assistant, show_reply
from core.context import estimate_tokens
from core.tools import ToolRegistry
from tests.e2e.support import make_settings
from tests.e2e.test_tools import ANN, CHAT, PNG_BASE64, USAGE_A, FakeTool, tool_call, watched_surface
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("after_chars", [0, 8])
async def test_a_refusal_in_an_error_event_is_asked_again_only_before_any_text(
    upstream: FakeUpstream, tmp_path: Path, after_chars: int
) -> None:
    refusal = {"message": "tools is not supported with this model", "type": "invalid_request_error", "param": "tools"}
    upstream.add_fault("sse_error_after", after_chars, text="Partial answer.", error_payload=refusal)
    upstream.add_reply("A plain answer.")
    async with open_assistant(make_settings(upstream, tmp_path), tools=ToolRegistry([FakeTool("t")])) as assistant:
        surface = watched_surface()
        result = await show_reply(assistant, Turn(CHAT, ANN, "hi"), surface, budget=Budget(30))

    if after_chars == 0:  # a 200 whose first event refuses: as a 400 would
        assert result.is_complete and surface.visible_texts() == ["A plain answer."]
        assert [r.tool_names for r in upstream.chat_requests] == [["t"], []]
    else:  # text was shown: asking again would show it twice; the answer ends cut short
        assert not result.is_complete and surface.visible_texts()[0].startswith("Partial\n")
        assert [r.tool_names for r in upstream.chat_requests] == [["t"]]


def _answered_calls(messages: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The ids of the calls a request's messages make, and of the results it sends back."""
    called = [call["id"] for m in messages for call in m.get("tool_calls") or ()]
    return called, [m["tool_call_id"] for m in messages if m["role"] == "tool"]


@pytest.mark.parametrize("failure", ["error_before_text", "cut_mid_text"])
async def test_a_final_round_that_fails_after_tools_ran_still_stores_the_whole_exchange(
    upstream: FakeUpstream, tmp_path: Path, failure: str
) -> None:
    lookup = FakeTool("lookup_order", lambda _: "shipped")
    upstream.add_reply(
        "Let me look.",
        tool_calls=[tool_call("lookup_order", '{"id": "A-17"}')],
        finish_reason="tool_calls",
        usage=USAGE_A,
    )
    if failure == "error_before_text":
        upstream.add_error(500)  # the request carrying the tool results fails
    else:
        upstream.add_fault("disconnect_after", 12, text="It has shipped, and")
    upstream.add_reply("Here is the rest.")
    async with open_assistant(make_settings(upstream, tmp_path), tools=ToolRegistry([lookup])) as assistant:
        surface = watched_surface()
        result = await show_reply(assistant, Turn(CHAT, ANN, "where is A-17?"), surface, budget=Budget(30))
        await show_reply(assistant, Turn(CHAT, ANN, "and now?"), watched_surface(), budget=Budget(30))
        usage = await assistant.usage(CHAT, ANN)

    assert not result.is_complete and surface.visible_texts()[0].startswith("Let me look.")
    messages = upstream.chat_requests[2].body["messages"]
    called, answered = _answered_calls(messages)
    assert called == answered == ["call_lookup_order"]  # every call with its result: a valid request
    shown = [(m["role"], m["content"]) for m in messages[1:]]
    partial = [("assistant", "It has shipp")] if failure == "cut_mid_text" else []  # no empty answer is sent
    assert shown == [
        ("user", "where is A-17?"),
        ("assistant", "Let me look."),
        ("tool", "shipped"),
        *partial,
        ("user", "and now?"),
    ]
    assert usage.conversation.prompt_tokens >= USAGE_A["prompt_tokens"]  # the round that ran is charged


async def test_a_drawing_whose_reply_then_failed_is_stored_as_not_shown(upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.add_reply(tool_calls=[tool_call("generate_image", '{"prompt": "a cat"}')], finish_reason="tool_calls")
    upstream.add_reply(f"![cat](data:image/png;base64,{PNG_BASE64})")
    upstream.add_error(500)
    async with open_assistant(make_settings(upstream, tmp_path)) as assistant:
        failed = await show_reply(assistant, Turn(CHAT, ANN, "draw a cat"), watched_surface(), budget=Budget(30))
        await show_reply(assistant, Turn(CHAT, ANN, "where is it?"), watched_surface(), budget=Budget(30))

    assert not failed.is_complete and failed.images_sent == 0
    assert upstream.chat_requests[2].tool_results[0]["content"] == "Done: an image was shown to the user."
    # The next turn's model learns the truth: the picture never reached the user.
    assert upstream.chat_requests[3].tool_results[0]["content"] == (
        "Done: an image was shown to the user. (The reply then failed: the user never saw the image.)"
    )


async def test_a_400_about_something_else_than_tools_is_the_usual_error_and_tools_stay_offered(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_error(400, {"error": {"message": "a 'tool' message must follow 'tool_calls'", "param": "messages"}})
    upstream.add_reply("Fine now.")
    async with open_assistant(make_settings(upstream, tmp_path), tools=ToolRegistry([FakeTool("t")])) as assistant:
        surface = watched_surface()
        first = await show_reply(assistant, Turn(CHAT, ANN, "hi"), surface, budget=Budget(30))
        second = await show_reply(assistant, Turn(CHAT, ANN, "again"), watched_surface(), budget=Budget(30))

    assert not first.is_complete and surface.visible_texts() == ["⚠️ The model service refused this request."]
    assert second.text == "Fine now."
    assert [r.tool_names for r in upstream.chat_requests] == [["t"], ["t"]]  # not asked again, not forgotten


async def test_a_drawing_counts_against_the_users_requests_per_minute(upstream: FakeUpstream, tmp_path: Path) -> None:
    now = [1_000_000.0]  # one minute window for the whole test: nothing is left to the wall clock
    draw = '{"prompt": "a cat"}'
    upstream.add_reply(tool_calls=[tool_call("generate_image", draw)], finish_reason="tool_calls")
    upstream.add_reply("I could not draw it: you are over your limit.")
    settings = make_settings(upstream, tmp_path, user_requests_per_minute=1)
    async with open_assistant(settings, clock=lambda: now[0]) as assistant:
        surface = watched_surface()
        result = await show_reply(assistant, Turn(CHAT, ANN, "draw a cat"), surface, budget=Budget(30))

    assert result.is_complete and surface.visible_texts() == ["I could not draw it: you are over your limit."]
    assert [r.body["model"] for r in upstream.chat_requests] == ["fake/echo", "fake/echo"]  # no image request
    assert upstream.chat_requests[1].tool_results[0]["content"] == (
        "error: not drawn: the user has reached a usage limit (requests per minute)"
    )


async def test_a_drawing_within_the_limit_is_counted_so_the_next_message_is_refused(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    now = [1_000_000.0]
    upstream.add_reply(tool_calls=[tool_call("generate_image", '{"prompt": "a cat"}')], finish_reason="tool_calls")
    upstream.add_reply(f"![cat](data:image/png;base64,{PNG_BASE64})")
    upstream.add_reply("A cat.")
    settings = make_settings(upstream, tmp_path, user_requests_per_minute=2)
    async with open_assistant(settings, clock=lambda: now[0]) as assistant:
        result = await show_reply(assistant, Turn(CHAT, ANN, "draw a cat"), watched_surface(), budget=Budget(30))
        # The message and the drawing used the two requests of this minute.
        refused = await show_reply(assistant, Turn(CHAT, ANN, "thanks"), watched_surface(), budget=Budget(30))
        now[0] += 60
        later = await show_reply(assistant, Turn(CHAT, ANN, "thanks"), watched_surface(), budget=Budget(30))

    assert result.text == "A cat." and result.images_sent == 1 and later.text == "Echo: thanks"
    assert refused.error_message.startswith("You have sent too many messages")


async def test_a_huge_tool_result_stays_within_the_context_budget_of_the_next_turn(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    big = FakeTool("big", lambda _: "r" * 40_000)
    upstream.add_reply(tool_calls=[tool_call("big")], finish_reason="tool_calls")
    upstream.add_reply("Read it all.")
    settings = make_settings(upstream, tmp_path, context_budget_tokens=1000, system_prompt="be brief")
    async with open_assistant(settings, tools=ToolRegistry([big])) as assistant:
        await show_reply(assistant, Turn(CHAT, ANN, "fetch"), watched_surface(), budget=Budget(30))
        await show_reply(assistant, Turn(CHAT, ANN, "and?"), watched_surface(), budget=Budget(30))

    result = upstream.chat_requests[1].tool_results[0]["content"]
    assert len(result) < 20_100 and result.endswith("[cut: 20000 more characters not shown]")  # TOOL_RESULT_MAX_CHARS
    messages = upstream.chat_requests[2].body["messages"]
    called, answered = _answered_calls(messages)
    assert called == answered == []  # the result did not fit, and its call went with it
    assert sum(estimate_tokens(str(m.get("content") or "")) for m in messages) <= 1000
    assert [(m["role"], m["content"]) for m in messages] == [
        ("system", "be brief"),
        ("assistant", "Read it all."),
        ("user", "and?"),
    ]
