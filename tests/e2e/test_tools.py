"""Tools the chat model calls, end to end through the real assistant, store and `show_reply`.

The fake upstream sends real SSE tool-call chunks; the tools are small test implementations of our own
`Tool` port (MCP and other sources plug in behind the same port). The chat is the fake surface.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from core import Budget, ConversationKey, Rendered, Turn, UserRef, open_assistant, show_reply
from core.store import open_store
from core.tools import ToolContext, ToolRegistry, ToolResult
from tests.e2e.support import make_settings
from tests.fakes.images import png_bytes
from tests.fakes.live_surface import FakePlatform, FakeSurface
from tests.fakes.upstream import FakeUpstream, ToolCallScript
from tests.profiles import TELEGRAM_PRIVATE

pytestmark = pytest.mark.e2e

ANN = UserRef("7", "Ann")
CHAT = ConversationKey("telegram", "42")
GUARD_SECONDS = 20  # a bound for a hang, not a pace
USAGE_A = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
PNG_BASE64 = base64.b64encode(png_bytes()).decode()
USAGE_B = {"prompt_tokens": 150, "completion_tokens": 20, "total_tokens": 170}


class FakeTool:
    """A test tool: answers with `answer(arguments)`, after `gate` (if any) lets it go on."""

    def __init__(
        self,
        name: str,
        answer: Callable[[Mapping[str, object]], str] = lambda _: "ok",
        *,
        gate: asyncio.Event | None = None,
        fail: Exception | None = None,
    ) -> None:
        self.name = name
        self.description = f"The {name} test tool."
        self.parameters: Mapping[str, object] = {"type": "object", "properties": {"id": {"type": "string"}}}
        self.calls: list[Mapping[str, object]] = []
        self.running = 0
        self.most_at_once = 0
        self.two_running = asyncio.Event()
        self._answer, self._gate, self._fail = answer, gate, fail

    async def run(self, arguments: Mapping[str, object], context: ToolContext) -> ToolResult:
        self.calls.append(arguments)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        if self.running == 2:
            self.two_running.set()
        try:
            if self._gate is not None:
                await self._gate.wait()
            if self._fail is not None:
                raise self._fail
            return ToolResult(self._answer(arguments))
        finally:
            self.running -= 1


class WatchedSurface(FakeSurface):
    """The fake surface, telling the test when a text containing `watch_for` went on screen."""

    watch_for = "\x00"
    seen = asyncio.Event()

    def _enter(self, kind: str, message_id: str = "", rendered: Rendered | None = None) -> None:
        super()._enter(kind, message_id, rendered)
        if rendered is not None and self.watch_for in rendered.text:
            self.seen.set()


def watched_surface() -> WatchedSurface:
    profile = replace(TELEGRAM_PRIVATE, edit_interval_seconds=0.02, supports_draft=False)
    surface = WatchedSurface(profile, platform=FakePlatform(speed=0.02))
    surface.seen = asyncio.Event()
    return surface


def _shown(surface: FakeSurface) -> list[str]:
    """Every text the chat showed at some point (sends and edits), in order."""
    return [call.rendered.text for call in surface.platform.calls if call.rendered is not None]


async def _wait(event: asyncio.Event) -> None:
    async with asyncio.timeout(GUARD_SECONDS):
        await event.wait()


def tool_call(name: str, arguments: str = "{}", call_id: str = "") -> ToolCallScript:
    return ToolCallScript(call_id or f"call_{name}", name, arguments)


async def test_a_tool_call_runs_its_result_goes_back_and_the_next_turn_sees_the_whole_exchange(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    gate = asyncio.Event()
    lookup = FakeTool("lookup_order", lambda args: f"order {args['id']}: shipped", gate=gate)
    upstream.add_reply(
        "Let me check.",
        tool_calls=[tool_call("lookup_order", '{"id": "A-17"}')],
        finish_reason="tool_calls",
        usage=USAGE_A,
    )
    upstream.add_reply("Your order A-17 has shipped.", usage=USAGE_B)
    upstream.add_reply("You are welcome.")
    settings = make_settings(upstream, tmp_path)
    async with open_assistant(settings, tools=ToolRegistry([lookup])) as assistant:
        surface = watched_surface()
        surface.watch_for = "🔧 lookup_order…"
        turn = Turn(CHAT, ANN, "where is A-17?")
        reply = asyncio.create_task(show_reply(assistant, turn, surface, budget=Budget(30)))
        # While the tool runs, the text streamed before the call stays, with a status line under it.
        await _wait(surface.seen)
        assert "Let me check." in _shown(surface)[-1]
        gate.set()
        result = await reply
        usage = await assistant.usage(CHAT, ANN)
        await show_reply(assistant, Turn(CHAT, ANN, "thanks"), watched_surface(), budget=Budget(30))

    assert result.is_complete
    assert surface.visible_texts() == ["Let me check.\n\nYour order A-17 has shipped."]
    assert lookup.calls == [{"id": "A-17"}]
    first, follow_up, next_turn = upstream.chat_requests
    assert first.tool_names == ["lookup_order"] and first.body["tools"][0]["function"]["parameters"]["type"] == "object"
    assert follow_up.body["messages"][-2]["tool_calls"][0]["function"] == {
        "name": "lookup_order",
        "arguments": '{"id": "A-17"}',
    }
    assert follow_up.tool_results == [
        {"role": "tool", "tool_call_id": "call_lookup_order", "content": "order A-17: shipped"}
    ]
    # The next turn sees the question, the call, its result and the answer, in order.
    roles = [(m["role"], m.get("content")) for m in next_turn.body["messages"][1:]]
    assert roles == [
        ("user", "where is A-17?"),
        ("assistant", "Let me check."),
        ("tool", "order A-17: shipped"),
        ("assistant", "Your order A-17 has shipped."),
        ("user", "thanks"),
    ]
    assert next_turn.body["messages"][2]["tool_calls"][0]["id"] == "call_lookup_order"
    # Both rounds' tokens are counted.
    assert usage.conversation.prompt_tokens == 250 and usage.conversation.completion_tokens == 30


async def test_each_round_stores_its_own_reasoning(upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.add_reply(
        "Checking.",
        reasoning="I should look it up.",
        tool_calls=[tool_call("lookup_order")],
        finish_reason="tool_calls",
    )
    upstream.add_reply("Shipped.", reasoning="The tool says shipped.")
    settings = make_settings(upstream, tmp_path)
    async with open_assistant(settings, tools=ToolRegistry([FakeTool("lookup_order")])) as assistant:
        await show_reply(assistant, Turn(CHAT, ANN, "where?"), watched_surface(), budget=Budget(30))
    async with open_store(settings.database_url) as store:
        conversation = await store.active_conversation(CHAT, ANN, model="fake/echo", system_prompt="")
        stored = await store.recent_messages(conversation.id, limit=10)

    assert [(m.role, m.text, m.reasoning) for m in stored] == [
        ("user", "where?", None),
        ("assistant", "Checking.", "I should look it up."),
        ("tool", "ok", None),
        ("assistant", "Shipped.", "The tool says shipped."),  # not the first round's again
    ]


async def test_two_calls_in_one_turn_run_at_the_same_time(upstream: FakeUpstream, tmp_path: Path) -> None:
    both = asyncio.Event()
    weather = FakeTool("weather", lambda args: f"sunny in {args['id']}", gate=both)
    upstream.add_reply(
        tool_calls=[tool_call("weather", '{"id": "Oslo"}', "c1"), tool_call("weather", '{"id": "Rome"}', "c2")],
        tool_call_index="reused",
        finish_reason="tool_calls",
    )
    upstream.add_reply("Sunny in both.")
    async with open_assistant(make_settings(upstream, tmp_path), tools=ToolRegistry([weather])) as assistant:
        reply = asyncio.create_task(
            show_reply(assistant, Turn(CHAT, ANN, "weather?"), watched_surface(), budget=Budget(30))
        )
        await _wait(weather.two_running)  # both started before either finished
        both.set()
        result = await reply

    assert result.text == "Sunny in both." and weather.most_at_once == 2
    assert upstream.chat_requests[1].tool_results == [
        {"role": "tool", "tool_call_id": "c1", "content": "sunny in Oslo"},
        {"role": "tool", "tool_call_id": "c2", "content": "sunny in Rome"},
    ]


async def test_a_failing_and_a_slow_tool_give_the_model_short_errors_and_the_user_an_answer(
    upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = FakeTool("broken", fail=RuntimeError("db password hunter2 in a traceback"))
    slow = FakeTool("slow", gate=asyncio.Event())  # never released: only the timeout ends it
    upstream.add_reply(
        tool_calls=[tool_call("broken"), tool_call("slow"), tool_call("nonexistent")], finish_reason="tool_calls"
    )
    upstream.add_reply("Sorry, the tools failed.")
    settings = make_settings(upstream, tmp_path, tool_timeout_seconds=0.2)
    caplog.set_level(logging.DEBUG, logger="core")
    async with open_assistant(settings, tools=ToolRegistry([broken, slow])) as assistant:
        surface = watched_surface()
        async with asyncio.timeout(GUARD_SECONDS):
            result = await show_reply(assistant, Turn(CHAT, ANN, "try"), surface, budget=Budget(30))

    assert result.is_complete and surface.visible_texts() == ["Sorry, the tools failed."]
    assert [m["content"] for m in upstream.chat_requests[1].tool_results] == [
        "error: the tool failed (RuntimeError)",
        "error: the tool did not answer within 0.2 seconds",
        "error: no such tool",
    ]
    assert "hunter2" not in caplog.text and "Traceback" not in caplog.text


async def test_long_results_are_cut_and_results_stay_out_of_the_logs(
    upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = FakeTool("big", lambda _: "secret-result " + "x" * 500)
    upstream.add_reply(tool_calls=[tool_call("big")], finish_reason="tool_calls")
    upstream.add_reply("Done.")
    caplog.set_level(logging.DEBUG, logger="core")
    settings = make_settings(upstream, tmp_path, tool_result_max_chars=100)
    async with open_assistant(settings, tools=ToolRegistry([big])) as assistant:
        await show_reply(assistant, Turn(CHAT, ANN, "go"), watched_surface(), budget=Budget(30))

    content = upstream.chat_requests[1].tool_results[0]["content"]
    assert content.startswith("secret-result xx") and content.endswith("[cut: 414 more characters not shown]")
    assert len(content) < 150
    assert "secret-result" not in caplog.text and "tool big ok" in caplog.text


async def test_the_round_limit_stops_a_model_that_keeps_calling_tools(upstream: FakeUpstream, tmp_path: Path) -> None:
    again = FakeTool("again")
    for _ in range(3):
        upstream.add_reply(tool_calls=[tool_call("again")], finish_reason="tool_calls")
    upstream.add_reply("never asked for")
    async with open_assistant(make_settings(upstream, tmp_path, tool_max_rounds=2), tools=ToolRegistry([again])) as a:
        surface = watched_surface()
        result = await show_reply(a, Turn(CHAT, ANN, "loop"), surface, budget=Budget(30))
        await show_reply(a, Turn(CHAT, ANN, "and now?"), watched_surface(), budget=Budget(30))

    assert len(again.calls) == 2 and result.is_complete
    assert "more tool calls than allowed" in surface.visible_texts()[-1]
    # The unanswered third call was not stored: the next turn's request has only answered calls.
    after = upstream.chat_requests[3].body["messages"]
    called = [c["id"] for m in after if m.get("tool_calls") for c in m["tool_calls"]]
    assert len(called) == 2 and len([m for m in after if m["role"] == "tool"]) == 2
    assert after[-1]["content"] == "and now?"


async def test_a_gateway_refusing_tools_is_asked_again_without_and_remembered(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.refuse_tools = True
    upstream.add_reply("A plain answer.")
    upstream.add_reply("Another plain answer.")
    async with open_assistant(make_settings(upstream, tmp_path), tools=ToolRegistry([FakeTool("t")])) as assistant:
        surface = watched_surface()
        first = await show_reply(assistant, Turn(CHAT, ANN, "hi"), surface, budget=Budget(30))
        second = await show_reply(assistant, Turn(CHAT, ANN, "again"), watched_surface(), budget=Budget(30))

    assert first.is_complete and surface.visible_texts() == ["A plain answer."]
    assert second.text == "Another plain answer."
    assert [r.tool_names for r in upstream.chat_requests] == [["t"], [], []]  # refused once, then not offered


async def test_tools_are_not_offered_to_a_stranger(upstream: FakeUpstream, tmp_path: Path) -> None:
    settings = make_settings(upstream, tmp_path, allowed_users=("telegram:1",))
    async with open_assistant(settings, tools=ToolRegistry([FakeTool("t")])) as assistant:
        with pytest.raises(Exception) as refused:
            await show_reply(assistant, Turn(CHAT, ANN, "hi"), watched_surface(), budget=Budget(30))
    assert type(refused.value).__name__ == "AccessDeniedError"
    assert upstream.chat_requests == []
