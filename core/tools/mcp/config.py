"""MCP_CONFIG: the MCP servers to start, from a JSON file in the common `mcpServers` format.

    {"mcpServers": {
        "orders": {"command": "python", "args": ["-m", "orders_mcp"], "env": {"ORDERS_DB": "orders.db"}},
        "search": {"url": "https://search.example/mcp", "headers": {"Authorization": "Bearer …"},
                   "tools": ["web_search"]}}}

A server with `command` is started as a stdio subprocess; one with `url` is reached over Streamable HTTP.
`tools` limits which of a server's tools are offered. The server's name is the namespace of its tools
(`orders__lookup_order`), so it follows the tool-name rule. Anything else is refused with a
`ConfigError` naming the entry: a typo must not silently drop a server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.tools.registry import NAMESPACE_SEPARATOR, valid_name

SETTING = "MCP_CONFIG"
CONFIG_MAX_BYTES = 1_000_000  # an operator's file; anything bigger is not a server list
# "type" as other clients write it (VS Code, Claude Code); the transport follows from command/url anyway.
STDIO_TYPES = frozenset({"stdio"})
HTTP_TYPES = frozenset({"http", "streamable-http", "streamableHttp"})
STDIO_KEYS = frozenset({"command", "args", "env", "cwd", "tools", "type"})
HTTP_KEYS = frozenset({"url", "headers", "tools", "type"})


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    """One entry of `mcpServers`: either `command` (stdio) or `url` (Streamable HTTP)."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    tools: frozenset[str] | None = None  # None: every tool the server lists


def secret_values(servers: tuple[McpServerConfig, ...]) -> list[str]:
    """What an entry may hold that is secret: header values (and the token after "Bearer "), env values.
    Registered with core.logs.secrets_redacted, so no library's log line can carry them."""
    values: list[str] = []
    for server in servers:
        for value in (*server.headers.values(), *server.env.values()):
            values.append(value)
            _, space, tail = value.rpartition(" ")
            if space:
                values.append(tail)
    return values


def load_mcp_config(path: str) -> tuple[McpServerConfig, ...]:
    """Read and check the file at `path`; ConfigError (naming the file and the entry) when it is wrong."""
    try:
        with Path(path).open("rb") as file:
            raw = file.read(CONFIG_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(SETTING, f"cannot be read ({path}: {exc.strerror or type(exc).__name__})") from None
    if len(raw) > CONFIG_MAX_BYTES:
        raise _invalid(path, f"is larger than {CONFIG_MAX_BYTES} bytes")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise _invalid(path, f"is not JSON ({str(exc)[:100]})") from None
    servers = document.get("mcpServers") if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise _invalid(path, 'needs an object "mcpServers" at the top')
    return tuple(_server(path, name, entry) for name, entry in servers.items())


def _server(path: str, name: str, entry: Any) -> McpServerConfig:
    where = f"mcpServers.{name[:64]}"
    if not valid_name(name) or NAMESPACE_SEPARATOR in name:
        raise _invalid(path, f"{where}: a server name is 1-64 of A-Z, a-z, 0-9, _ and - (without '__')")
    if not isinstance(entry, dict):
        raise _invalid(path, f"{where} must be an object")
    kind = entry.get("type")
    if kind is not None and kind not in STDIO_TYPES | HTTP_TYPES:
        raise _invalid(path, f'{where}.type must be "stdio" or "http" (SSE servers are not supported)')
    if ("command" in entry) == ("url" in entry):
        raise _invalid(path, f'{where} needs either "command" (stdio) or "url" (Streamable HTTP)')
    stdio = "command" in entry
    if kind is not None and (kind in STDIO_TYPES) != stdio:
        raise _invalid(path, f"{where}.type {kind!r} does not match its {'command' if stdio else 'url'}")
    unknown = sorted(set(entry) - (STDIO_KEYS if stdio else HTTP_KEYS))
    if unknown:
        raise _invalid(path, f"{where}: unknown key {unknown[0][:40]!r}")
    tools = entry.get("tools")
    if tools is not None and not _strings(tools):
        raise _invalid(path, f"{where}.tools must be a list of tool names")
    allowed = frozenset(tools) if tools is not None else None
    if stdio:
        command, args, env, cwd = entry["command"], entry.get("args", []), entry.get("env", {}), entry.get("cwd")
        if not isinstance(command, str) or not command.strip():
            raise _invalid(path, f"{where}.command must be a non-empty string")
        if not _strings(args):
            raise _invalid(path, f"{where}.args must be a list of strings")
        if not _string_map(env):
            raise _invalid(path, f"{where}.env must be an object of strings")
        if cwd is not None and not isinstance(cwd, str):
            raise _invalid(path, f"{where}.cwd must be a string")
        return McpServerConfig(name, command=command, args=tuple(args), env=dict(env), cwd=cwd, tools=allowed)
    url, headers = entry["url"], entry.get("headers", {})
    if not isinstance(url, str) or not url.strip().startswith(("http://", "https://")):
        raise _invalid(path, f"{where}.url must start with http:// or https://")
    if not _string_map(headers):
        raise _invalid(path, f"{where}.headers must be an object of strings")
    return McpServerConfig(name, url=url.strip(), headers=dict(headers), tools=allowed)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(item, str) for item in value.values())


def _invalid(path: str, problem: str) -> ConfigError:
    return ConfigError(SETTING, f"is invalid ({path}: {problem})")
