"""MCP servers as tools: MCP_CONFIG's servers kept connected, their tools registered under their names.

The SDK is imported only when servers are configured: it costs about a second at start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from core.tools.mcp.config import McpServerConfig, load_mcp_config
from core.tools.registry import ToolRegistry


@asynccontextmanager
async def open_mcp_servers(configs: Sequence[McpServerConfig], registry: ToolRegistry) -> AsyncIterator[None]:
    """Keep `configs`' servers connected, their tools in `registry`, for the life of the block."""
    if not configs:
        yield
        return
    from core.tools.mcp.servers import McpServers

    async with McpServers(configs, registry):
        yield


__all__ = ["McpServerConfig", "load_mcp_config", "open_mcp_servers"]
