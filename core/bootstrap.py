"""Building the assistant: `open_assistant` owns the database, the upstream client, the Redis counter and
the MCP servers for the life of its block, in one place; `upgrade_database` for `parley db upgrade`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from core.assistant import Assistant, default_tools
from core.cluster import Cluster, open_cluster
from core.counters import RequestCounter, open_redis_counter
from core.logs import secrets_redacted
from core.settings import DatabaseSettings, Settings
from core.store import Store, open_store, upgrade
from core.tools import ToolRegistry
from core.tools.mcp import McpServerConfig, load_mcp_config, open_mcp_servers, secret_values
from core.upstream import UpstreamClient

if TYPE_CHECKING:
    from core.metrics import Metrics


@asynccontextmanager
async def open_assistant(
    settings: Settings,
    *,
    migrate: bool = True,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
    tools: ToolRegistry | None = None,
) -> AsyncIterator[Assistant]:
    """Own the database, the upstream client and the MCP servers for the life of the block; upgrade the schema first.

    `clock` (Unix seconds) decides the per-minute and per-day windows of the user limits and stamps what is
    stored; tests pass their own.
    """
    registry = default_tools(settings) if tools is None else tools
    mcp_servers = load_mcp_config(settings.mcp_config) if settings.mcp_config else ()  # ConfigError first
    if migrate:
        await upgrade(settings.database_url)
    # Header and env values of MCP_CONFIG are secrets like the API key: out of every log line.
    with secrets_redacted(*secret_values(mcp_servers)):
        async with _resources(settings, mcp_servers, registry, clock) as (counter, cluster, store, upstream):
            yield Assistant(
                settings=settings,
                upstream=upstream,
                store=store,
                metrics=metrics,
                clock=clock,
                counter=counter,
                tools=registry,
                cluster=cluster,
            )


@asynccontextmanager
async def _resources(
    settings: Settings,
    mcp_servers: tuple[McpServerConfig, ...],
    registry: ToolRegistry,
    clock: Callable[[], float],
) -> AsyncIterator[tuple[RequestCounter | None, Cluster, Store, UpstreamClient]]:
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    async with (
        open_redis_counter(redis_url) as counter,
        open_cluster(redis_url) as cluster,
        open_store(settings.database_url, clock=clock) as store,
        UpstreamClient(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout_seconds=settings.llm_timeout_seconds,
            idle_timeout_seconds=settings.stream_idle_timeout_seconds,
            reply_timeout_seconds=settings.reply_timeout_seconds,
            max_retries=settings.llm_max_retries,
            max_connections=settings.llm_max_connections,
            extra_body=settings.llm_extra_body,
            clock=clock,
            allow_private_image_urls=settings.allow_private_image_urls,
        ) as upstream,
        # Their tools join `registry` while they are up; their stderr is user content, shown like LOG_CONTENT.
        open_mcp_servers(mcp_servers, registry, server_stderr=settings.log_content),
    ):
        yield counter, cluster, store, upstream


async def upgrade_database(settings: DatabaseSettings) -> None:
    """`parley db upgrade`: bring the schema to the newest revision."""
    await upgrade(settings.database_url)
