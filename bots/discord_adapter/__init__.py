"""The Discord adapter (discord.py 2): client, surface, slash commands; not named `discord` (the library).

`bots.discord_bot.run_discord` is the entry point; this package imports only `core`, discord.py and Pillow.
"""

from bots.discord_adapter.client import ParleyDiscord, build_client, intents
from bots.discord_adapter.surface import DiscordSurface

__all__ = ["DiscordSurface", "ParleyDiscord", "build_client", "intents"]
