"""A fake Discord (REST v10 + gateway websocket) for end-to-end tests of the real discord.py client.

Imports aiohttp and, only in point_discord_py_at, discord.py; nothing from core or bots.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .gateway import Connection, Identify, Resume
from .models import (
    ChannelType,
    CommandSync,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeRole,
    FakeUser,
    MentionOutcome,
    Ping,
    RestCall,
    StoredAttachment,
    StoredMessage,
    Upload,
)
from .ratelimit import BucketRule, RateLimitPolicy
from .server import FakeDiscord

__all__ = [
    "BucketRule",
    "ChannelType",
    "CommandSync",
    "Connection",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeRole",
    "FakeUser",
    "Identify",
    "MentionOutcome",
    "Ping",
    "RateLimitPolicy",
    "RestCall",
    "Resume",
    "StoredAttachment",
    "StoredMessage",
    "Upload",
    "point_discord_py_at",
]


@contextmanager
def point_discord_py_at(rest_base: str, gateway_url: str | None = None) -> Iterator[None]:
    """Point discord.py at another REST base and gateway for the duration of the block, then restore both.

    discord.py 2 has no per-client setting for either, and both are class attributes, so this is
    process-wide (every client, and interaction webhooks, which build the same `Route`):
    - `discord.http.Route.BASE` ("https://discord.com/api/v10"): read by `Route.__init__` for every REST call.
    - `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY` (wss://gateway.discord.gg/): a plain `Client`
      never calls GET /gateway/bot; `Client.connect` dials this URL (adding ?v=10&encoding=json&
      compress=zlib-stream), and dials it again after an INVALID_SESSION. RESUMEs go to READY's
      resume_gateway_url instead. `AutoShardedClient` does use GET /gateway/bot's url.
    With `gateway_url=None` only the REST base moves; the default gateway is still restored on exit, so a
    client may set DEFAULT_GATEWAY itself from `await client.http.get_bot_gateway()` in its setup_hook.
    """
    import discord.http
    import yarl
    from discord.gateway import DiscordWebSocket

    saved_base, saved_gateway = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = rest_base.rstrip("/")
    if gateway_url is not None:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved_base, saved_gateway
