"""The tool cases of issue 14, each run end to end on Telegram, Discord and in `parley chat`.

Every case uses `generate_image`, the tool Parley ships: it comes in through the settings (IMAGE_MODEL)
exactly as in production, so no test hands the bots a tool the composition root would not. The fake
upstream plays both models: the chat model calls the tool, the image model behind it draws, fails or
hangs. An image answer waits for `Drawings.release`: a surface's test sets it once the status line is on
screen, so "the status line was shown" never depends on timing.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from tests.fakes.images import png_bytes
from tests.fakes.upstream import FakeUpstream, RecordedRequest, ToolCallScript

PICTURE = png_bytes(12, 8)
DONE = "Done: an image was shown to the user."
STATUS = "🔧 generate_image…"
ROUND_LIMIT_NOTE = "The model wanted more tool calls than allowed; its answer stopped there."
UNAVAILABLE_NOTE = "The model service is unavailable right now. Please try again later."
NOT_SHOWN = f"{DONE} (The reply then failed: the user never saw the image.)"
IMAGE_SECRET = "sk-image-model-secret-42"  # in an image model's error: must reach no chat and no model
CHAT_MODEL = "fake/echo"


@dataclass
class Drawings:
    """The image model's side of a case: how many drawings were asked, and the gate they wait behind."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: int = 0
    together: int = 1  # a drawing answers only once this many were asked (two parallel calls: 2)
    _all_here: asyncio.Event = field(default_factory=asyncio.Event)

    async def _turn(self) -> None:
        self.arrived += 1
        if self.arrived >= self.together:
            self._all_here.set()
        await self._all_here.wait()  # a tool run one after the other would never get here: it times out
        await self.release.wait()

    async def picture(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        await self._turn()
        content = f"![drawn](data:image/png;base64,{base64.b64encode(PICTURE).decode()})"
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        return web.json_response({"id": "img", "object": "chat.completion", "choices": [choice]})

    async def refusal(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        await self._turn()
        error = {"message": f"content policy violation (key {IMAGE_SECRET})", "type": "invalid_request_error"}
        return web.json_response({"error": error}, status=400)

    async def never(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        await asyncio.Event().wait()  # until the fake closes: only TOOL_TIMEOUT_SECONDS ends the call
        raise AssertionError("unreachable")


def draw(prompt: str, call_id: str = "c1") -> ToolCallScript:
    return ToolCallScript(call_id, "generate_image", json.dumps({"prompt": prompt, "use_images": False}))


@dataclass(frozen=True)
class ToolCase:
    """One case: what the user asks, what the upstream does, and what every surface must show."""

    id: str
    script: Callable[[FakeUpstream, Drawings], None]
    turns: tuple[tuple[str, str], ...]  # (the user's message, the answer's text as shown)
    results: tuple[str, ...]  # the tool results the chat model read, in the last chat request
    offered: tuple[tuple[str, ...], ...]  # the tools each chat request offered
    images: int = 0  # pictures uploaded with the reply
    status: bool = True  # a tool ran in the first turn: its status line was shown, then replaced
    note: str = ""  # a note the surface shows with the first turn's answer
    before_call: str = ""  # the text the model streamed before its first call: it stays on screen
    settings: Mapping[str, Any] = field(default_factory=dict)  # settings fields (env names in lower case)
    together: int = 1
    in_group: bool = False

    def drawings(self, upstream: FakeUpstream) -> Drawings:
        """Script `upstream` for this case; the returned gate holds the image model's answers."""
        drawings = Drawings(together=self.together)
        self.script(upstream, drawings)
        return drawings

    def env(self) -> dict[str, str]:
        return {name.upper(): str(value) for name, value in self.settings.items()}

    def check_requests(self, upstream: FakeUpstream) -> None:
        chat = [r for r in upstream.chat_requests if r.body["model"] == CHAT_MODEL]
        assert [tuple(r.tool_names) for r in chat] == list(self.offered)
        assert tuple(m["content"] for m in chat[-1].tool_results) == self.results
        # The model reads a short result: never the picture's bytes, nor the image model's words.
        assert not any(b"base64" in r.raw or IMAGE_SECRET.encode() in r.raw for r in chat)


def _one_round(upstream: FakeUpstream, drawings: Drawings) -> None:
    upstream.add_reply("Drawing it.", tool_calls=[draw("a pirate mascot")], finish_reason="tool_calls")
    upstream.add_handler(drawings.picture)
    upstream.add_reply("Here is your pirate.")


def _parallel(upstream: FakeUpstream, drawings: Drawings) -> None:
    calls = [draw("a red ship", "c1"), draw("a blue ship", "c2")]
    upstream.add_reply(tool_calls=calls, tool_call_index="reused", finish_reason="tool_calls")
    upstream.add_handler(drawings.picture)
    upstream.add_handler(drawings.picture)
    upstream.add_reply("Two ships.")


def _failing(upstream: FakeUpstream, drawings: Drawings) -> None:
    upstream.add_reply(tool_calls=[draw("a forbidden cat")], finish_reason="tool_calls")
    upstream.add_handler(drawings.refusal)
    upstream.add_reply("I could not draw that, sorry.")


def _slow(upstream: FakeUpstream, drawings: Drawings) -> None:
    upstream.add_reply(tool_calls=[draw("a slow ship")], finish_reason="tool_calls")
    upstream.add_handler(drawings.never)
    upstream.add_reply("That took too long, sorry.")


def _round_limit(upstream: FakeUpstream, drawings: Drawings) -> None:
    upstream.add_reply("Drawing.", tool_calls=[draw("a parrot")], finish_reason="tool_calls")
    upstream.add_handler(drawings.picture)
    upstream.add_reply("One more.", tool_calls=[draw("another parrot", "c2")], finish_reason="tool_calls")


def _final_round_fails(upstream: FakeUpstream, drawings: Drawings) -> None:
    upstream.add_reply("Drawing it.", tool_calls=[draw("a pirate mascot")], finish_reason="tool_calls")
    upstream.add_handler(drawings.picture)
    upstream.add_error(500)  # the request carrying the drawing's result
    upstream.add_reply("Sorry, it got lost.")


def _refusal(upstream: FakeUpstream, drawings: Drawings) -> None:
    upstream.refuse_tools = True  # a 400 "<model> does not support tools" (Ollama's words); echo answers after


GENERATE_IMAGE = ("generate_image",)
CASES = (
    ToolCase(
        "one_round", _one_round, (("draw our mascot as a pirate", "Drawing it.\n\nHere is your pirate."),),
        results=(DONE,), offered=(GENERATE_IMAGE, GENERATE_IMAGE), images=1, before_call="Drawing it.",
    ),
    ToolCase(
        "two_parallel_calls", _parallel, (("draw two ships", "Two ships."),),
        results=(DONE, DONE), offered=(GENERATE_IMAGE, GENERATE_IMAGE), images=2, together=2,
        settings={"tool_timeout_seconds": 10},  # two calls run one after the other would time out
    ),
    ToolCase(
        "failing_tool", _failing, (("draw a forbidden cat", "I could not draw that, sorry."),),
        results=("error: the tool failed (UpstreamRejectedError)",), offered=(GENERATE_IMAGE, GENERATE_IMAGE),
    ),
    ToolCase(
        "slow_tool_times_out", _slow, (("draw a slow ship", "That took too long, sorry."),),
        results=("error: the tool did not answer within 2 seconds",), offered=(GENERATE_IMAGE, GENERATE_IMAGE),
        settings={"tool_timeout_seconds": 2},  # long enough for the status line to show even under load
    ),
    ToolCase(
        "round_limit", _round_limit, (("draw parrots", "Drawing.\n\nOne more."),),
        results=(DONE,), offered=(GENERATE_IMAGE, GENERATE_IMAGE), images=1, note=ROUND_LIMIT_NOTE,
        settings={"tool_max_rounds": 1}, before_call="Drawing.",
    ),
    ToolCase(
        # Not one of the seven: the request after the drawing fails. The user reads the note, the
        # picture is not sent, and the next turn's request has the call with its (corrected) result.
        "final_round_fails", _final_round_fails,
        (("draw our mascot as a pirate", "Drawing it."), ("where is it?", "Sorry, it got lost.")),
        results=(NOT_SHOWN,), offered=(GENERATE_IMAGE,) * 3, note=UNAVAILABLE_NOTE,
        before_call="Drawing it.",
    ),
    ToolCase(
        "gateway_refuses_tools", _refusal, (("hello", "Echo: hello"), ("again", "Echo: again")),
        results=(), offered=(GENERATE_IMAGE, (), ()), status=False,  # refused once, then never offered
    ),
    ToolCase(
        "drawing_in_a_group_reply", _one_round,
        (("draw our mascot as a pirate", "Drawing it.\n\nHere is your pirate."),),
        results=(DONE,), offered=(GENERATE_IMAGE, GENERATE_IMAGE), images=1, in_group=True,
        before_call="Drawing it.",
    ),
)  # fmt: skip


def case_id(case: ToolCase) -> str:
    return case.id


@dataclass(frozen=True, slots=True)
class Shown:
    """A text message of the bot's as the chat shows it: its text now, every text it had, what it replies to."""

    text: str
    versions: tuple[str, ...]
    reply_to: object


class ChatView(Protocol):
    """One chat with the bot on a fake platform, as the cases read it."""

    def send(self, text: str) -> object:
        """The user sends `text` (with the bot's mention in a group); returns the message's id."""
        ...

    def answers(self) -> list[Shown]: ...

    def pictures(self) -> list[bytes]: ...

    async def wait_for(self, predicate: Callable[[], object]) -> None: ...


def _final(expected: str, note: str) -> Callable[[str], bool]:
    return lambda text: text.startswith(expected) and note in text and "🔧" not in text


def _answered(case: ToolCase, chat: ChatView, turn: int, expected: str) -> Callable[[], bool]:
    done = _final(expected, case.note if turn == 0 else "")
    return lambda: len(chat.answers()) > turn and done(chat.answers()[turn].text)


async def play(case: ToolCase, chat: ChatView, drawings: Drawings) -> list[object]:
    """Send the case's messages; let the image model answer once the status line is on screen; wait for the
    answers and their pictures. Returns the ids of the user's messages."""
    asked: list[object] = []
    for turn, (question, expected) in enumerate(case.turns):
        asked.append(chat.send(question))
        if case.status and turn == 0:
            await chat.wait_for(lambda: any(STATUS in v for shown in chat.answers() for v in shown.versions))
        drawings.release.set()
        await chat.wait_for(_answered(case, chat, turn, expected))
    await chat.wait_for(lambda: len(chat.pictures()) >= case.images)
    return asked


def check_shown(case: ToolCase, chat: ChatView, asked: list[object], secrets: tuple[str, ...]) -> None:
    """What every platform must have shown for `case`."""
    answers = chat.answers()
    assert len(answers) == len(case.turns), [shown.text for shown in answers]
    for turn, ((_, expected), shown, question) in enumerate(zip(case.turns, answers, asked, strict=True)):
        note = case.note if turn == 0 else ""
        assert _final(expected, note)(shown.text), shown.text
        if not note:
            assert shown.text == expected
        # The text streamed before the call stayed while the status line showed under it.
        shown_status = [v for v in shown.versions if "🔧" in v]
        assert bool(shown_status) == (case.status and turn == 0), shown.versions
        assert all(v.startswith(case.before_call) and STATUS in v for v in shown_status), shown_status
        if case.in_group:
            assert shown.reply_to == question  # the group reads the answer as the reply to its question
    assert chat.pictures() == [PICTURE] * case.images
    seen = "".join(v for shown in answers for v in shown.versions)
    assert not any(secret in seen for secret in (*secrets, IMAGE_SECRET, "Traceback"))
