"""MCP servers through the real SDK: the fake server as a stdio subprocess and over Streamable HTTP.

Listed, namespaced and filtered tools; calls, failures and non-text results; what a server's environment
holds; a server that does not start, one that dies and comes back, and every process gone at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from core.tools import ToolContext, ToolFailed, ToolRegistry, ToolResult
from core.tools.mcp import McpServerConfig
from core.tools.mcp.servers import McpServers, McpTiming
from tests.e2e.log_lines import log_line
from tests.fakes.mcp_server import ROOT, SERVER_MODULE, serve_http

pytestmark = pytest.mark.e2e

FAST = McpTiming(check_seconds=0.2, retry_first_seconds=0.05, retry_max_seconds=0.2)
SECRETS = {
    "LLM_API_KEY": "sk-parley-secret",
    "TELEGRAM_BOT_TOKEN": "123:telegram-secret",
    "DISCORD_BOT_TOKEN": "discord-secret",
    "DATABASE_URL": "postgresql://parley:db-secret@db/parley",
}
SERVERS_LOG = "core.tools.mcp.servers"


def fake_server(
    name: str = "orders", *, env: Mapping[str, str] | None = None, tools: frozenset[str] | None = None
) -> McpServerConfig:
    """The fake MCP server as a stdio subprocess of this test."""
    return McpServerConfig(
        name, command=sys.executable, args=("-m", SERVER_MODULE), env=dict(env or {}), cwd=str(ROOT), tools=tools
    )


async def call(registry: ToolRegistry, name: str, arguments: Mapping[str, object] | None = None) -> ToolResult:
    tool = registry.get(name)
    assert tool is not None, f"{name} is not offered: {registry.names()}"
    return await tool.run(arguments or {}, ToolContext())


async def server_pid(registry: ToolRegistry, namespace: str) -> int:
    return int(json.loads((await call(registry, f"{namespace}__env_report")).text)["pid"])


def gone(pid: int) -> bool:
    """The process has ended and been reaped (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_stdio_servers_tools_are_offered_namespaced_filtered_and_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    registry = ToolRegistry()
    configs = [
        fake_server("orders", env={"ORDERS_REGION": "eu"}),
        fake_server("reports", tools=frozenset({"chart", "env_report", "not_there"})),
    ]
    async with McpServers(configs, registry, timing=FAST) as servers:
        assert sorted(servers.connected()) == ["orders", "reports"]
        assert sorted(registry.names()) == [
            "orders__broken", "orders__chart", "orders__env_report", "orders__exit_now", "orders__lookup_order",
            "orders__open_invoices", "orders__slow", "reports__chart", "reports__env_report",
        ]  # fmt: skip
        [spec] = [s for s in registry.specs() if s["function"]["name"] == "orders__lookup_order"]
        assert spec["function"]["description"] == "Look up an order by its id and tell its status."
        assert spec["function"]["parameters"]["required"] == ["id"]

        found = await call(registry, "orders__lookup_order", {"id": "A-17"})
        assert found == ToolResult("Order A-17: shipped on Monday, arriving Friday.")
        missing = await call(registry, "orders__lookup_order", {"id": "Z-9"})
        assert missing.is_error and "no order Z-9" in missing.text
        failed = await call(registry, "orders__broken")
        assert failed.is_error and "the order database is down" in failed.text
        # A call given up on (as TOOL_TIMEOUT_SECONDS does) leaves the connection usable.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await call(registry, "orders__slow", {"seconds": 30})
        assert (await call(registry, "orders__lookup_order", {"id": "B-2"})).text == "Order B-2: waiting for payment."
        chart = await call(registry, "reports__chart")
        assert chart.text == "Orders per day:\n[the tool returned an image (image/png), not shown]"

        # A server sees its config's env and the SDK's few safe variables: none of Parley's secrets.
        report = json.loads((await call(registry, "orders__env_report")).text)["env"]
        assert report["ORDERS_REGION"] == "eu" and "PATH" in report
        assert not set(SECRETS) & set(report)
        assert not any(secret in value for secret in SECRETS.values() for value in report.values())


async def test_a_streamable_http_server_gets_its_headers_and_a_wrong_token_is_not_fatal() -> None:
    registry = ToolRegistry()
    async with serve_http(token="web-token") as web:
        only_lookup = frozenset({"lookup_order"})
        configs = [
            McpServerConfig("web", url=web.url, headers={"Authorization": "Bearer web-token"}, tools=only_lookup),
            McpServerConfig("stranger", url=web.url, headers={"Authorization": "Bearer wrong"}),
        ]
        with log_line(SERVERS_LOG, "mcp server stranger did not start") as refused:
            async with McpServers(configs, registry, timing=FAST) as servers:
                await refused.wait()
                assert servers.connected() == ["web"] and registry.names() == ["web__lookup_order"]
                assert (
                    await call(registry, "web__lookup_order", {"id": "B-2"})
                ).text == "Order B-2: waiting for payment."


async def test_a_server_that_fails_to_start_is_skipped_and_retried_and_the_others_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = ToolRegistry()
    configs = [McpServerConfig("ghost", command="/nonexistent/mcp-server"), fake_server("orders")]
    with log_line(SERVERS_LOG, "mcp server ghost did not start") as first, caplog.at_level("INFO", SERVERS_LOG):
        async with McpServers(configs, registry, timing=FAST) as servers:
            await first.wait()
            assert servers.connected() == ["orders"]
            assert not any(name.startswith("ghost__") for name in registry.names())
            assert (await call(registry, "orders__lookup_order", {"id": "A-17"})).text.startswith("Order A-17")
            with log_line(SERVERS_LOG, "mcp server ghost did not start") as again:
                await again.wait()  # tried again in the background
    ghost = [r.getMessage() for r in caplog.records if "ghost" in r.getMessage()]
    assert ghost[0] == (
        "mcp server ghost did not start (FileNotFoundError: No such file or directory); trying again in 0.05 seconds"
    )


async def test_a_server_that_dies_is_withdrawn_retried_and_offered_again_once_back(tmp_path: Path) -> None:
    registry = ToolRegistry()
    refuse = tmp_path / "refuse-to-start"
    configs = [fake_server("orders", env={"FAKE_MCP_FAIL_FILE": str(refuse)}), fake_server("reports")]
    async with McpServers(configs, registry, timing=FAST) as servers:
        first_pid = await server_pid(registry, "orders")
        refuse.touch()  # its restarts fail until the file is gone
        with (
            log_line(SERVERS_LOG, "mcp server orders was lost") as lost,
            log_line(SERVERS_LOG, "mcp server orders did not start") as restart_failed,
        ):
            with pytest.raises(ToolFailed, match="the MCP server orders is not connected"):
                await call(registry, "orders__exit_now")
            await lost.wait()
            await servers.wait_until(lambda: "orders__lookup_order" not in registry.names())
            await restart_failed.wait()
        assert servers.connected() == ["reports"] and "reports__lookup_order" in registry.names()
        assert (await call(registry, "reports__lookup_order", {"id": "B-2"})).text == "Order B-2: waiting for payment."
        refuse.unlink()
        await servers.wait_until(lambda: "orders__lookup_order" in registry.names())
        assert (await call(registry, "orders__lookup_order", {"id": "A-17"})).text.startswith("Order A-17")
        assert await server_pid(registry, "orders") != first_pid
        assert gone(first_pid)


async def test_a_server_that_changes_its_tools_gets_the_new_list_offered() -> None:
    registry = ToolRegistry()
    async with McpServers([fake_server("orders")], registry, timing=FAST) as servers:
        assert "orders__lookup_invoice" not in registry.names()
        assert (await call(registry, "orders__open_invoices")).text == "invoices are open"
        await servers.wait_until(lambda: "orders__lookup_invoice" in registry.names())
        assert (await call(registry, "orders__lookup_invoice", {"id": "I-1"})).text == "Invoice I-1: paid."
        assert "orders__lookup_order" in registry.names()


async def test_shutdown_ends_every_server_process_even_with_a_call_in_flight(tmp_path: Path) -> None:
    registry = ToolRegistry()
    arrived = tmp_path / "slow-call-arrived"
    async with McpServers([fake_server("a", env={"FAKE_MCP_SLOW_MARK": str(arrived)}), fake_server("b")], registry):
        pids = [await server_pid(registry, "a"), await server_pid(registry, "b")]
        assert not any(gone(pid) for pid in pids)
        slow = asyncio.create_task(call(registry, "a__slow", {"seconds": 30}))
        async with asyncio.timeout(20):
            while not arrived.exists():  # noqa: ASYNC110 - another process makes the file: no event to await
                await asyncio.sleep(0.01)
    assert all(gone(pid) for pid in pids)
    assert registry.names() == []
    with pytest.raises(ToolFailed, match="the MCP server a is not connected"):
        await slow
