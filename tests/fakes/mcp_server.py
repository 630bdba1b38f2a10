"""A fake MCP server built with the official SDK's server side (`MCPServer`), for Parley's MCP client.

    python -m tests.fakes.mcp_server        serve over stdio, as an MCP client starts a server

Tools: `lookup_order(id)`, `broken()` (fails: an `isError` result), `slow(seconds)`, `env_report()` (this
process's pid and environment as JSON: what a server started by Parley can see), `chart()` (text and an
image), `open_invoices()` (adds a tool: the list changes), `exit_now()` (the process dies in the middle of
the call).
FAKE_MCP_FAIL_FILE: while that file exists the server exits with status 1 before serving (a server that
fails to start). FAKE_MCP_PID_FILE: the server writes its pid there once it serves. FAKE_MCP_SLOW_MARK: a file
`slow` creates when a call arrives.
`serve_http()`: the same tools over Streamable HTTP on 127.0.0.1, in the caller's event loop, requiring
`Authorization: Bearer <token>` when a token is given.

The protocol is the SDK's; the rule stated here: a tool's own failure is a result with `isError: true`,
not a protocol error, so the model can read it
(https://modelcontextprotocol.io/specification/2025-11-25/server/tools#error-handling).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ImageContent, TextContent

from tests.fakes.images import png_bytes

ORDERS = {"A-17": "shipped on Monday, arriving Friday", "B-2": "waiting for payment"}
SERVER_MODULE = "tests.fakes.mcp_server"
ROOT = Path(__file__).resolve().parents[2]  # `python -m tests.fakes.mcp_server` runs from here


def build_server() -> MCPServer:
    server = MCPServer("fake-orders", log_level="WARNING")  # stderr stays quiet: it is the user's terminal

    @server.tool(description="Look up an order by its id and tell its status.")
    def lookup_order(id: str) -> str:
        status = ORDERS.get(id)
        if status is None:
            raise ToolError(f"no order {id}")
        return f"Order {id}: {status}."

    @server.tool(description="Always fails.")
    def broken() -> str:
        raise ToolError("the order database is down")

    @server.tool(description="Answers after `seconds`.")
    async def slow(seconds: float) -> str:
        started = os.environ.get("FAKE_MCP_SLOW_MARK")
        if started:
            Path(started).touch()  # the call has arrived: what a test waits for
        await asyncio.sleep(seconds)
        return f"slept {seconds:g} seconds"

    @server.tool(description="This server's process id and environment.")
    def env_report() -> str:
        return json.dumps({"pid": os.getpid(), "env": dict(os.environ)})

    @server.tool(description="A chart of the orders, as an image.")
    def chart() -> list[TextContent | ImageContent]:
        picture = base64.b64encode(png_bytes()).decode()
        return [TextContent(text="Orders per day:"), ImageContent(data=picture, mime_type="image/png")]

    def lookup_invoice(id: str) -> str:
        return f"Invoice {id}: paid."

    @server.tool(description="Adds the tool `lookup_invoice` to this server's list.")
    def open_invoices() -> str:
        server.add_tool(lookup_invoice, description="Look up an invoice by its id.")
        return "invoices are open"

    @server.tool(description="Ends this server's process in the middle of the call.")
    def exit_now() -> str:
        os._exit(3)

    return server


def main() -> int:
    fail_file = os.environ.get("FAKE_MCP_FAIL_FILE")
    if fail_file and Path(fail_file).exists():
        print("fake mcp server: refusing to start", file=sys.stderr)
        return 1
    pid_file = os.environ.get("FAKE_MCP_PID_FILE")
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    print("fake mcp server: serving over stdio", file=sys.stderr, flush=True)  # as real servers log
    build_server().run("stdio")
    return 0


def stdio_entry(**extra: Any) -> dict[str, Any]:
    """This server's entry for an `mcpServers` file, started with the test's own Python."""
    return {"command": sys.executable, "args": ["-m", SERVER_MODULE], "cwd": str(ROOT), **extra}


@dataclass(frozen=True, slots=True)
class HttpServer:
    url: str


@contextlib.asynccontextmanager
async def serve_http(token: str | None = None) -> AsyncIterator[HttpServer]:
    """The fake over Streamable HTTP on 127.0.0.1 (a free port), for as long as the block runs."""
    app = build_server().streamable_http_app(host="127.0.0.1")

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or ())
        if (
            scope["type"] == "http"
            and token is not None
            and headers.get(b"authorization") != f"Bearer {token}".encode()
        ):
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(guarded, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
            await asyncio.sleep(0.01)  # uvicorn has no start event to await
        port = server.servers[0].sockets[0].getsockname()[1]
        yield HttpServer(f"http://127.0.0.1:{port}/mcp")
    finally:
        server.should_exit = True
        await task


if __name__ == "__main__":
    raise SystemExit(main())
