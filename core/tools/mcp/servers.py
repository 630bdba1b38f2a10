"""MCP servers kept connected, their tools in the registry while they are up.

`McpServers` (an async context manager) runs one supervisor task per configured server: connect through
the official SDK's `Client` (a stdio subprocess or Streamable HTTP), list the tools, register them under
the server's name, then list them again now and then (a liveness check that also picks up changes). A
server that fails to start or stops answering is logged (one line: its name and the kind of failure), its
tools are withdrawn, and it is tried again with a growing pause; once it is back, its tools are offered
again. Nothing about a server is ever fatal.

Every SDK connection is opened and closed by its own supervisor task (anyio's cancel scopes must not
cross tasks); leaving the block tells the supervisors to stop and waits for them, so each stdio server
gets the SDK's shutdown (stdin closed, then SIGTERM, then SIGKILL of its process group) and is reaped.

A stdio server's environment is its config's `env` over the SDK's short list of safe variables (PATH,
HOME, USER, ...): never Parley's own environment, so never the API key, the bot tokens or DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

import anyio
import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters, stdio_client
from mcp.client import Transport
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from core.tools.mcp.config import McpServerConfig
from core.tools.mcp.tool import Link, McpTool
from core.tools.registry import ToolRegistry

log = logging.getLogger(__name__)

LIST_PAGES_MAX = 100  # tools/list pages read per connection: a server paging forever cannot hang us
HTTP_READ_TIMEOUT_SECONDS = 300.0  # a Streamable HTTP server may hold a response stream open (the SDK's default)


@dataclass(frozen=True, slots=True)
class McpTiming:
    request_timeout_seconds: float = 30.0  # connect, initialize, list (a call: TOOL_TIMEOUT_SECONDS)
    check_seconds: float = 30.0  # how often a quiet connection is checked (with tools/list)
    retry_first_seconds: float = 1.0  # the pause after a failure, doubled each time up to retry_max_seconds
    retry_max_seconds: float = 60.0
    start_wait_seconds: float = 10.0  # how long entering waits for the servers' first attempts
    stop_wait_seconds: float = 10.0  # then the supervisors still closing are cancelled


class McpServers:
    """Keeps `configs`' servers connected and their tools in `registry` for the life of the block."""

    def __init__(
        self,
        configs: Sequence[McpServerConfig],
        registry: ToolRegistry,
        *,
        timing: McpTiming = McpTiming(),
        errlog: TextIO | None = None,
    ) -> None:
        self._configs = tuple(configs)
        self._registry = registry
        self._timing = timing
        self._errlog = errlog  # where a stdio server's stderr goes; None: ours
        self._links = {config.name: Link(config.name) for config in self._configs}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()

    def connected(self) -> list[str]:
        """The servers whose tools are offered now."""
        return [name for name, link in self._links.items() if link.client is not None]

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds; it is checked after every connect and disconnect."""
        while not predicate():
            await self._changed.wait()

    async def __aenter__(self) -> McpServers:
        attempted = [asyncio.Event() for _ in self._configs]
        self._tasks = [
            asyncio.create_task(self._supervise(config, done), name=f"mcp-{config.name}")
            for config, done in zip(self._configs, attempted, strict=True)
        ]
        # The first reply should already have the tools; a slow server is not waited for beyond this.
        with anyio.move_on_after(self._timing.start_wait_seconds):
            for done in attempted:
                await done.wait()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        for link in self._links.values():
            link.alarm.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=self._timing.stop_wait_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        log.info("mcp servers closed")

    async def _supervise(self, config: McpServerConfig, attempted: asyncio.Event) -> None:
        link = self._links[config.name]
        pause = self._timing.retry_first_seconds
        while not self._stopping.is_set():
            connected = asyncio.Event()
            try:
                await self._serve(config, link, connected, attempted)
                return  # only on stop: a lost connection raises
            except Exception as exc:  # whatever a server or its transport does, the bot goes on
                failure, was_up = _describe(exc), connected.is_set()
            finally:
                self._withdraw(link)
                attempted.set()
            if self._stopping.is_set():
                return
            pause = self._timing.retry_first_seconds if was_up else pause
            what = "was lost" if was_up else "did not start"
            log.warning("mcp server %s %s (%s); trying again in %.3g seconds", config.name, what, failure, pause)
            with anyio.move_on_after(pause):
                await self._stopping.wait()
            pause = min(pause * 2, self._timing.retry_max_seconds)

    async def _serve(
        self, config: McpServerConfig, link: Link, connected: asyncio.Event, attempted: asyncio.Event
    ) -> None:
        """Connect, offer the tools, and watch the connection until stopping; raise when it is lost."""
        async with AsyncExitStack() as stack:
            transport = await self._transport(config, stack)
            client = Client(
                transport,
                read_timeout_seconds=self._timing.request_timeout_seconds,
                cache=None,  # a fresh listing on every connection
                client_info=types.Implementation(name="parley", version="1"),
            )
            await stack.enter_async_context(client)
            tools = await _list_tools(client)
            offered = self._offer(config, link, client, tools)
            log.info("mcp server %s connected: %d tools offered", config.name, offered)
            connected.set()
            attempted.set()
            try:
                await self._watch(config, link, client, tools)
            finally:
                self._withdraw(link)  # before the connection closes: no call starts on a closing one

    async def _transport(self, config: McpServerConfig, stack: AsyncExitStack) -> Transport:
        if config.command is not None:
            parameters = StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.env), cwd=config.cwd
            )
            return stdio_client(parameters, errlog=self._errlog or sys.stderr)
        assert config.url is not None
        # The SDK follows a redirect only within the configured URL's origin: a server never sends us elsewhere.
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=dict(config.headers),
                timeout=httpx2.Timeout(self._timing.request_timeout_seconds, read=HTTP_READ_TIMEOUT_SECONDS),
            )
        )
        return streamable_http_client(config.url, http_client=http)

    async def _watch(self, config: McpServerConfig, link: Link, client: Client, tools: list[types.Tool]) -> None:
        """Return when stopping; raise when the server stops answering (checked after a failed call, and
        every check_seconds). The check is a fresh `tools/list` (ping is gone from the 2026 protocol), so a
        server that changed its tools gets them offered anew."""
        while not self._stopping.is_set():
            with anyio.move_on_after(self._timing.check_seconds):
                await link.alarm.wait()
            link.alarm.clear()
            if self._stopping.is_set():
                return
            listed = await _list_tools(client)
            if listed != tools:
                tools = listed
                self._registry.unregister_namespace(config.name)
                offered = self._offer(config, link, client, tools)
                log.info("mcp server %s changed its tools: %d offered", config.name, offered)

    def _offer(self, config: McpServerConfig, link: Link, client: Client, tools: Sequence[types.Tool]) -> int:
        wanted = [tool for tool in tools if config.tools is None or tool.name in config.tools]
        missing = sorted((config.tools or frozenset()) - {tool.name for tool in tools})
        if missing:
            log.warning("mcp server %s does not list the configured tools %s", config.name, ", ".join(missing)[:200])
        offered = 0
        for tool in wanted:
            try:
                self._registry.register(McpTool(link, tool), namespace=config.name)
            except ValueError:  # a name the model could not call, or listed twice
                log.warning("mcp server %s: tool %.70r not offered (invalid or repeated name)", config.name, tool.name)
            else:
                offered += 1
        link.client = client
        self._notify()
        return offered

    def _withdraw(self, link: Link) -> None:
        self._registry.unregister_namespace(link.name)
        if link.client is not None:
            link.client = None
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


async def _list_tools(client: Client) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(LIST_PAGES_MAX):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _describe(exc: BaseException) -> str:
    """The kind of failure, for one log line: never a message that could hold a header, URL or tool text."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return "connection closed" if exc.code == types.CONNECTION_CLOSED else f"MCP error {exc.code}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__
