"""MCP servers as tools: MCP_CONFIG's servers kept connected, their tools registered under their names.

The SDK is imported only when servers are configured: it costs about a second at start.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from core.tools.mcp.config import McpServerConfig, load_mcp_config, secret_values
from core.tools.registry import ToolRegistry


@asynccontextmanager
async def open_mcp_servers(
    configs: Sequence[McpServerConfig], registry: ToolRegistry, *, server_stderr: bool = False
) -> AsyncIterator[None]:
    """Keep `configs`' servers connected, their tools in `registry`, for the life of the block.

    A stdio server's stderr goes to ours only with `server_stderr` (LOG_CONTENT=true): servers log what
    they were asked and answered, which is user content; and its lines would break LOG_FORMAT=json.
    """
    if not configs:
        yield
        return
    from core.tools.mcp.servers import McpServers

    with contextlib.ExitStack() as files:
        errlog = sys.stderr if server_stderr else files.enter_context(open(os.devnull, "w"))  # noqa: ASYNC230 - never blocks
        async with McpServers(configs, registry, errlog=errlog):
            yield


__all__ = ["McpServerConfig", "load_mcp_config", "open_mcp_servers", "secret_values"]
