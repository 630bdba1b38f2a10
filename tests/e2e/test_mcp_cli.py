"""`parley chat` with MCP_CONFIG: a real subprocess starting the fake MCP server, against the fake gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import API_KEY
from tests.e2e.test_cli import chat_env, run
from tests.e2e.test_mcp_servers import gone
from tests.fakes.mcp_server import stdio_entry
from tests.fakes.upstream import FakeUpstream, ToolCallScript

pytestmark = pytest.mark.e2e


def write_config(tmp_path: Path, servers: dict[str, Any]) -> str:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


async def test_chat_model_answers_from_an_mcp_tool_and_the_server_sees_no_secret(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    config = write_config(
        tmp_path,
        {
            "orders": stdio_entry(env={"FAKE_MCP_PID_FILE": str(pid_file)}, tools=["lookup_order", "env_report"]),
            "ghost": {"command": str(tmp_path / "no-such-server")},  # fails to start: skipped, not fatal
        },
    )
    async with FakeUpstream(api_key=API_KEY) as upstream:
        # 1: one round: the MCP tool's result, then the answer from it.
        upstream.add_reply(
            finish_reason="tool_calls", tool_calls=[ToolCallScript("c1", "orders__lookup_order", '{"id": "A-17"}')]
        )
        upstream.add_reply("Your order A-17 arrives on Friday.")
        # 2: the model reads the server's environment: nothing of Parley's own.
        upstream.add_reply(finish_reason="tool_calls", tool_calls=[ToolCallScript("c2", "orders__env_report", "")])
        upstream.add_reply("Checked.")
        env = chat_env(upstream, MCP_CONFIG=config)
        code, out, err = await run(["chat"], env, tmp_path, "where is my order A-17?\nwhat do you see?\n")
        requests = upstream.chat_requests

    assert code == 0, err
    assert out.splitlines() == ["Your order A-17 arrives on Friday.", "Checked."]
    assert err.splitlines() == ["(🔧 orders__lookup_order…)", "(🔧 orders__env_report…)"]
    assert all(r.tool_names == ["orders__lookup_order", "orders__env_report"] for r in requests)
    assert [m["content"] for m in requests[1].tool_results] == ["Order A-17: shipped on Monday, arriving Friday."]
    report = json.loads(requests[3].tool_results[-1]["content"])
    assert not {"LLM_API_KEY", "DATABASE_URL", "LLM_BASE_URL"} & set(report["env"])
    assert API_KEY not in requests[3].tool_results[-1]["content"]
    # The server was started by `parley chat` and ended with it (killed and reaped, not orphaned).
    assert report["pid"] == int(pid_file.read_text())
    assert gone(report["pid"])


async def test_a_servers_stderr_reaches_ours_only_with_log_content(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"orders": stdio_entry()})
    async with FakeUpstream(api_key=API_KEY) as upstream:
        code, out, err = await run(
            ["chat"], chat_env(upstream, MCP_CONFIG=config, LOG_CONTENT="true"), tmp_path, "hi\n"
        )
    assert code == 0 and out == "Echo: hi\n"
    assert "fake mcp server: serving over stdio" in err  # without LOG_CONTENT: see the first test's stderr


@pytest.mark.parametrize(
    ("servers", "problem"),
    [
        ({"orders": {"command": "x", "tools": "lookup_order"}}, "mcpServers.orders.tools must be a list of tool names"),
        (
            {"bad name": {"command": "x"}},
            "mcpServers.bad name: a server name is 1-64 of A-Z, a-z, 0-9, _ and - (without '__')",
        ),
    ],
)
async def test_a_wrong_mcp_config_stops_parley_with_one_line(
    tmp_path: Path, servers: dict[str, Any], problem: str
) -> None:
    config = write_config(tmp_path, servers)
    async with FakeUpstream(api_key=API_KEY) as upstream:
        code, out, err = await run(["chat"], chat_env(upstream, MCP_CONFIG=config), tmp_path, "hi\n")
        assert upstream.chat_requests == []
    assert code == 2 and out == ""
    assert err.splitlines() == [f"parley: error: MCP_CONFIG is invalid ({config}: {problem})"]
