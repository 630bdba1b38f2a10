"""One tool of an MCP server, as a Parley `Tool`: `run` is the server's `tools/call`.

What the model reads back is the result's text. Images, audio and binary resources are named in a short
note, never passed on (no base64 in the model's context or the logs); `isError` results are error
results. The tool holds its server's `Link`, not a connection: after a reconnect it uses the new one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from core.tools.base import ToolContext, ToolFailed, ToolResult

if TYPE_CHECKING:
    from mcp import Client

DESCRIPTION_MAX_CHARS = 1_000  # a server's description of a tool is sent with every request
NOTE_DETAIL_MAX_CHARS = 100  # a MIME type or URI quoted in a note
ERROR_MESSAGE_MAX_CHARS = 200  # an MCP error's message, for the model


@dataclass(slots=True)
class Link:
    """A server's current connection (None while it is down), and the alarm its tools raise."""

    name: str
    client: Client | None = None
    alarm: asyncio.Event = field(default_factory=asyncio.Event)  # a call failed: check the connection now


class McpTool:
    """A tool a connected MCP server listed."""

    def __init__(self, link: Link, tool: types.Tool) -> None:
        self._link = link
        self.name = tool.name
        self.description = (tool.description or "")[:DESCRIPTION_MAX_CHARS]
        self.parameters: Mapping[str, object] = tool.input_schema

    async def run(self, arguments: Mapping[str, object], context: ToolContext) -> ToolResult:
        client = self._link.client
        if client is None:
            raise ToolFailed(f"the MCP server {self._link.name} is not connected")
        try:
            result = await client.call_tool(self.name, dict(arguments))
        except MCPError as exc:
            self._link.alarm.set()  # a lost connection surfaces here first; any other error costs one check
            if exc.code == types.CONNECTION_CLOSED:
                raise ToolFailed(f"the MCP server {self._link.name} is not connected") from None
            raise ToolFailed(f"the MCP server answered: {exc.message[:ERROR_MESSAGE_MAX_CHARS]}") from None
        except Exception:
            self._link.alarm.set()
            raise
        return ToolResult(result_text(result), is_error=bool(result.is_error))


def result_text(result: types.CallToolResult) -> str:
    """The text of a `tools/call` result, with a note in place of what is not text."""
    parts = [_block_text(block) for block in result.content]
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def _block_text(block: Any) -> str:
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent):
        return f"[the tool returned an image ({block.mime_type[:NOTE_DETAIL_MAX_CHARS]}), not shown]"
    if isinstance(block, types.AudioContent):
        return f"[the tool returned audio ({block.mime_type[:NOTE_DETAIL_MAX_CHARS]}), not shown]"
    if isinstance(block, types.ResourceLink):
        return f"[resource: {str(block.uri)[:NOTE_DETAIL_MAX_CHARS]}]"
    if isinstance(block, types.EmbeddedResource):
        if isinstance(block.resource, types.TextResourceContents):
            return block.resource.text
        return "[the tool returned a binary resource, not shown]"
    return "[the tool returned content Parley does not read]"
