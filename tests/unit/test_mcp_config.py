"""MCP_CONFIG parsing and refusals, the text an MCP result gives the model, and namespaces withdrawn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest

from core import ConfigError
from core.tools import ToolRegistry
from core.tools.mcp import McpServerConfig, load_mcp_config
from core.tools.mcp.tool import result_text
from tests.unit.test_tool_registry import Named


def _write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "mcp.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def test_stdio_and_http_servers_with_env_headers_and_a_tools_filter(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "mcpServers": {
                "orders": {"command": "python", "args": ["-m", "orders"], "env": {"ORDERS_DB": "o.db"}},
                "web-search": {
                    "type": "http",
                    "url": " https://search.example/mcp ",
                    "headers": {"Authorization": "Bearer t"},
                    "tools": ["search"],
                },
            }
        },
    )
    orders, search = load_mcp_config(path)
    assert orders == McpServerConfig("orders", command="python", args=("-m", "orders"), env={"ORDERS_DB": "o.db"})
    assert orders.tools is None
    assert search == McpServerConfig(
        "web-search",
        url="https://search.example/mcp",
        headers={"Authorization": "Bearer t"},
        tools=frozenset({"search"}),
    )
    assert load_mcp_config(_write(tmp_path, {"mcpServers": {}})) == ()


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("{not json", "is not JSON"),
        ({"servers": {}}, 'needs an object "mcpServers"'),
        ({"mcpServers": []}, 'needs an object "mcpServers"'),
        ({"mcpServers": {"a__b": {"command": "x"}}}, "mcpServers.a__b: a server name is"),
        ({"mcpServers": {"has space": {"command": "x"}}}, "a server name is"),
        ({"mcpServers": {"x" * 65: {"command": "x"}}}, "a server name is"),
        ({"mcpServers": {"s": "python"}}, "mcpServers.s must be an object"),
        ({"mcpServers": {"s": {}}}, 'needs either "command" (stdio) or "url"'),
        ({"mcpServers": {"s": {"command": "x", "url": "https://a"}}}, 'needs either "command"'),
        ({"mcpServers": {"s": {"command": ""}}}, "mcpServers.s.command must be a non-empty string"),
        ({"mcpServers": {"s": {"command": "x", "args": "-m x"}}}, "mcpServers.s.args must be a list of strings"),
        ({"mcpServers": {"s": {"command": "x", "env": {"A": 1}}}}, "mcpServers.s.env must be an object of strings"),
        ({"mcpServers": {"s": {"command": "x", "tool": ["a"]}}}, "mcpServers.s: unknown key 'tool'"),
        ({"mcpServers": {"s": {"command": "x", "tools": "a"}}}, "mcpServers.s.tools must be a list of tool names"),
        ({"mcpServers": {"s": {"command": "x", "headers": {}}}}, "unknown key 'headers'"),
        ({"mcpServers": {"s": {"url": "ftp://a"}}}, "mcpServers.s.url must start with http:// or https://"),
        ({"mcpServers": {"s": {"url": "https://a", "headers": []}}}, "mcpServers.s.headers must be an object"),
        ({"mcpServers": {"s": {"url": "https://a", "type": "sse"}}}, "SSE servers are not supported"),
        ({"mcpServers": {"s": {"url": "https://a", "type": "stdio"}}}, "does not match its url"),
    ],
)
def test_a_wrong_file_or_entry_is_refused_in_one_line_naming_it(tmp_path: Path, document: Any, problem: str) -> None:
    path = _write(tmp_path, document)
    with pytest.raises(ConfigError) as refused:
        load_mcp_config(path)
    assert refused.value.setting == "MCP_CONFIG"
    assert problem in refused.value.problem and path in refused.value.problem
    assert "\n" not in str(refused.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"MCP_CONFIG: cannot be read \(.*nope.json: No such file"):
        load_mcp_config(str(tmp_path / "nope.json"))


def test_the_model_reads_text_and_a_note_for_what_is_not_text_never_base64() -> None:
    picture = "iVBORw0KGgo" * 100
    result = types.CallToolResult(
        content=[
            types.TextContent(text="Orders per day:"),
            types.ImageContent(data=picture, mime_type="image/png"),
            types.AudioContent(data=picture, mime_type="audio/wav"),
            types.EmbeddedResource(resource=types.TextResourceContents(uri="file:///a.txt", text="embedded")),
            types.EmbeddedResource(resource=types.BlobResourceContents(uri="file:///a.bin", blob=picture)),
        ]
    )
    assert result_text(result).splitlines() == [
        "Orders per day:",
        "[the tool returned an image (image/png), not shown]",
        "[the tool returned audio (audio/wav), not shown]",
        "embedded",
        "[the tool returned a binary resource, not shown]",
    ]
    structured = types.CallToolResult(content=[], structured_content={"status": "shipped"})
    assert result_text(structured) == '{"status": "shipped"}'


def test_a_namespace_is_withdrawn_whole_and_only_it() -> None:
    registry = ToolRegistry([Named("generate_image")])
    registry.register(Named("x"), namespace="a_")  # offered as a___x: looks like namespace "a" with "_x"
    registry.register(Named("lookup"), namespace="a")
    registry.register(Named("find"), namespace="a")
    registry.unregister_namespace("a")
    assert registry.names() == ["generate_image", "a___x"]
    registry.register(Named("lookup"), namespace="a")  # back again, under the same name
    assert registry.names() == ["generate_image", "a___x", "a__lookup"]
    registry.unregister_namespace("a_")
    assert [spec["function"]["name"] for spec in registry.specs()] == ["generate_image", "a__lookup"]
