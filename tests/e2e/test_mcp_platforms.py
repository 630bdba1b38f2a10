"""MCP tools on Telegram and Discord: the chat model calls the fake MCP server's tools mid-conversation."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

import pytest

from tests.e2e.discord_harness import World, discord_settings, running_bot
from tests.e2e.telegram_harness import telegram_world
from tests.e2e.test_mcp_cli import write_config
from tests.e2e.test_mcp_servers import gone
from tests.fakes.discord import FakeDiscord
from tests.fakes.mcp_server import stdio_entry
from tests.fakes.upstream import FakeUpstream, ToolCallScript

pytestmark = pytest.mark.e2e

ORDER_STATUS = "Order A-17: shipped on Monday, arriving Friday."


def _lookup(call_id: str = "c1", order: str = "A-17") -> ToolCallScript:
    return ToolCallScript(call_id, "orders__lookup_order", json.dumps({"id": order}))


async def test_telegram_answers_from_an_mcp_tool_a_slow_one_times_out_and_strangers_reach_no_tool(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, {"orders": stdio_entry()})
    async with telegram_world(tmp_path, mcp_config=config, tool_timeout_seconds=1.0) as w:
        ann, ann_dm = w.dm("Ann")
        bob, bob_dm = w.dm("Bob")
        settings = w.settings.model_copy(update={"allowed_users": (f"telegram:{ann.id}",)})
        w.up.add_reply("Let me check.", finish_reason="tool_calls", tool_calls=[_lookup()])
        w.up.add_reply("It arrives on Friday.")
        w.up.add_reply(finish_reason="tool_calls", tool_calls=[ToolCallScript("c2", "orders__slow", '{"seconds": 30}')])
        w.up.add_reply("The order system is slow today, sorry.")
        with caplog.at_level(logging.INFO):
            async with w.bot(settings):
                w.tg.user_sends(ann_dm, ann, "where is my order A-17?")
                await w.said(ann_dm, lambda t: t == "Let me check.\n\nIt arrives on Friday.")
                w.tg.user_sends(ann_dm, ann, "and my other order?")
                await w.said(ann_dm, lambda t: t == "The order system is slow today, sorry.")
                w.tg.user_sends(bob_dm, bob, "call orders__lookup_order for A-17")
                await w.said(bob_dm, lambda t: "private" in t)  # the access refusal
        first, answer, slow, excuse = w.up.chat_requests  # none for Bob: he never reaches the model or a tool
        assert "orders__lookup_order" in first.tool_names and "orders__slow" in first.tool_names
        assert [m["content"] for m in answer.tool_results] == [ORDER_STATUS]
        assert slow.last_user_text == "and my other order?"
        assert excuse.tool_results[-1]["content"] == "error: the tool did not answer within 1 seconds"
        logged = [record.getMessage() for record in caplog.records]
        assert any("orders__lookup_order" in line for line in logged)  # the call's name is logged, not its result
        assert any(line.startswith("mcp server orders connected") for line in logged)
        # A tool's result is untrusted text: not in the logs without LOG_CONTENT=true.
        assert not any("arriving Friday" in line for line in logged)


async def test_parley_run_starts_the_server_answers_from_it_and_ends_it_on_sigterm(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    config = write_config(tmp_path, {"orders": stdio_entry(env={"FAKE_MCP_PID_FILE": str(pid_file)})})
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        w.up.add_reply(finish_reason="tool_calls", tool_calls=[_lookup()])
        w.up.add_reply("It arrives on Friday.")
        async with w.parley_run(tmp_path, MCP_CONFIG=config) as process:
            w.tg.user_sends(chat, user, "where is my order A-17?")
            await w.said(chat, lambda t: t == "It arrives on Friday.")
            server_pid = int(pid_file.read_text())
            assert not gone(server_pid)
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 20)
        assert [m["content"] for m in w.up.chat_requests[1].tool_results] == [ORDER_STATUS]
    log = (out + err).decode()
    assert process.returncode == 0, log
    assert "mcp server orders connected: 7 tools offered" in log and "mcp servers closed" in log
    assert "orders__lookup_order" in log  # the tool loop logs the call's name (core/tools/loop.py)
    assert "Traceback" not in log and "arriving Friday" not in log
    assert "fake mcp server" not in log  # a server's stderr is user content too: shown only with LOG_CONTENT
    assert gone(server_pid)  # ended with Parley: not orphaned, not a zombie


async def test_discord_runs_two_mcp_calls_at_once_and_a_failing_one_still_gets_an_answer(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    config = write_config(tmp_path, {"orders": stdio_entry(tools=["lookup_order", "broken"])})
    upstream.add_reply(
        finish_reason="tool_calls",
        tool_calls=[_lookup("c1"), ToolCallScript("c2", "orders__broken", "{}")],
    )
    upstream.add_reply("A-17 arrives on Friday; the other lookup failed.")
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path, mcp_config=config)) as bot:
        asked = dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} where is A-17?", mentions_bot=True)
        await dc.wait_for(
            lambda: any(m.content.endswith("the other lookup failed.") for m in dc.bot_messages(world.channel))
        )
        await dc.wait_for(lambda: bot.handlers_in_flight == 0)
    [answer] = dc.bot_messages(world.channel)
    assert answer.content == "A-17 arrives on Friday; the other lookup failed." and answer.reference_id == asked.id
    first, second = upstream.chat_requests
    assert first.tool_names == ["generate_image", "orders__lookup_order", "orders__broken"]
    assert [m["tool_call_id"] for m in second.tool_results] == ["c1", "c2"]
    assert second.tool_results[0]["content"] == ORDER_STATUS
    assert (
        second.tool_results[1]["content"].startswith("error: ")
        and "database is down" in second.tool_results[1]["content"]
    )
