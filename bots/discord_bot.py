"""`parley run discord`: the Discord bot, running until cancelled; the adapter is in bots/discord_adapter/.

Imports only `core` and the adapter package.
"""

from __future__ import annotations

from bots.discord_adapter import build_client
from core import Assistant, ConfigError, Settings


async def run_discord(assistant: Assistant, settings: Settings) -> None:
    """Serve Discord until cancelled (SIGTERM): handlers in flight are cancelled, then the client closes.

    Raises ConfigError when the token is missing or refused, or the Message Content intent is not enabled.
    """
    if settings.discord_bot_token is None:
        raise ConfigError("DISCORD_BOT_TOKEN", "is not set")
    async with build_client(assistant=assistant, settings=settings) as client:
        await client.start(settings.discord_bot_token.get_secret_value())
