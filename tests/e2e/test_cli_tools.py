"""`parley chat` with the chat model calling `generate_image`: a real subprocess against the fake gateway."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from aiohttp import web

from tests.e2e.conftest import API_KEY
from tests.e2e.test_cli import chat_env, run
from tests.fakes.images import png_bytes
from tests.fakes.upstream import FakeUpstream, RecordedRequest, ToolCallScript

pytestmark = pytest.mark.e2e

PICTURE = f"![pirate](data:image/png;base64,{base64.b64encode(png_bytes()).decode()})"


def _draw(prompt: str, call_id: str = "call_1") -> ToolCallScript:
    return ToolCallScript(call_id, "generate_image", f'{{"prompt": "{prompt}"}}')


async def test_chat_model_draws_fails_softly_stops_at_the_round_limit_and_survives_a_tools_refusal(
    tmp_path: Path,
) -> None:
    async with FakeUpstream(api_key=API_KEY) as upstream:
        # 1: one round: the call, the image model's picture, the answer.
        upstream.add_reply("Drawing it.", tool_calls=[_draw("a pirate mascot")], finish_reason="tool_calls")
        upstream.add_reply(PICTURE)
        upstream.add_reply("Here is your pirate.")
        # 2: the image model fails: the chat model reads an error, the user still gets an answer.
        upstream.add_reply(tool_calls=[_draw("a ship")], finish_reason="tool_calls")
        upstream.add_error(400, {"error": {"message": "prompt blocked: token sk-internal-123", "type": "bad"}})
        upstream.add_reply("Sorry, I could not draw that.")
        # 3: TOOL_MAX_ROUNDS=1 and the model calls again after its round: stopped, with a note.
        upstream.add_reply(tool_calls=[_draw("a parrot")], finish_reason="tool_calls")
        upstream.add_reply(PICTURE)
        upstream.add_reply(tool_calls=[_draw("another parrot", "call_2")], finish_reason="tool_calls")
        # 4: the gateway refuses `tools`: asked again without them, and never offered them again.
        upstream.add_error(400, {"error": {"message": "tools are not supported by this model", "type": "x"}})
        upstream.add_reply("A plain answer.")
        env = chat_env(upstream, IMAGE_MODEL="fake/painter", IMAGE_DIR="pics", TOOL_MAX_ROUNDS="1", LLM_MAX_RETRIES="0")
        code, out, err = await run(["chat"], env, tmp_path, "draw our mascot as a pirate\nship\nparrot\nhi\nbye\n")
        requests = upstream.chat_requests

    assert code == 0, err
    lines = out.splitlines()
    saved = [line for line in lines if line.startswith("[image saved: ")]
    assert len(saved) == 2  # rounds 1 and 3
    path = Path(saved[0].removeprefix("[image saved: ").removesuffix("]"))
    assert path.read_bytes() == png_bytes()
    texts = [line for line in lines if not line.startswith("[image saved: ")]
    assert texts == [
        "Drawing it.",
        "",
        "Here is your pirate.",
        "Sorry, I could not draw that.",
        "",
        "A plain answer.",
        "Echo: bye",
    ]
    assert err.splitlines() == [
        "(🔧 generate_image…)",
        "(🔧 generate_image…)",
        "(🔧 generate_image…)",
        "parley: The model wanted more tool calls than allowed; its answer stopped there.",
    ]
    chat = [r for r in requests if r.body["model"] == "fake/echo"]
    images = [r for r in requests if r.body["model"] == "fake/painter"]
    assert [r.tool_names for r in chat] == [["generate_image"]] * 7 + [[], []]
    assert images[0].last_user_text == "a pirate mascot" and "tools" not in images[0].body
    # The model got a short result, never the picture; and the failure without upstream words or secrets.
    assert [m["content"] for m in chat[1].tool_results] == ["Done: an image was shown to the user."]
    assert chat[3].tool_results[-1]["content"] == "error: the tool failed (UpstreamRejectedError)"
    assert all("base64" not in r.raw.decode() for r in chat)
    assert "sk-internal" not in out + err


async def test_chat_model_draws_two_pictures_at_once_and_a_drawing_that_hangs_times_out(tmp_path: Path) -> None:
    async def never_answers(request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        await asyncio.Event().wait()  # until the fake closes
        raise AssertionError("unreachable")

    async with FakeUpstream(api_key=API_KEY) as upstream:
        # 1: two calls in one answer (without `index`, as some gateways send them): both pictures shown.
        upstream.add_reply(
            tool_calls=[_draw("a red ship", "c1"), _draw("a blue ship", "c2")],
            tool_call_index="omitted",
            finish_reason="tool_calls",
        )
        upstream.add_reply(PICTURE)
        upstream.add_reply(PICTURE)
        upstream.add_reply("Two ships.")
        # 2: the image model never answers: TOOL_TIMEOUT_SECONDS ends the call, the model answers anyway.
        upstream.add_reply(tool_calls=[_draw("a slow ship")], finish_reason="tool_calls")
        upstream.add_handler(never_answers)
        upstream.add_reply("That took too long, sorry.")
        env = chat_env(upstream, IMAGE_MODEL="fake/painter", IMAGE_DIR="pics", TOOL_TIMEOUT_SECONDS="1")
        code, out, err = await run(["chat"], env, tmp_path, "draw two ships\ndraw a slow one\n")
        requests = upstream.chat_requests

    assert code == 0, err
    lines = out.splitlines()
    assert [line for line in lines if not line.startswith("[image saved: ")] == [
        "Two ships.",
        "That took too long, sorry.",
    ]
    assert len([line for line in lines if line.startswith("[image saved: ")]) == 2
    assert err.splitlines() == ["(🔧 generate_image, generate_image…)", "(🔧 generate_image…)"]
    chat = [r for r in requests if r.body["model"] == "fake/echo"]
    assert [m["content"] for m in chat[1].tool_results] == ["Done: an image was shown to the user."] * 2
    assert [m["tool_call_id"] for m in chat[1].tool_results] == ["c1", "c2"]
    assert chat[3].tool_results[-1]["content"] == "error: the tool did not answer within 1 seconds"
