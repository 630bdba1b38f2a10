"""The adapters' live-reply profiles under default settings, for tests and benches that drive core.live."""

from __future__ import annotations

from bots.discord_adapter.surface import discord_profile
from bots.telegram_adapter.surface import telegram_profile
from core.settings import Settings, load_settings

DEFAULT_SETTINGS = load_settings(
    Settings, _env_file=None, llm_base_url="http://127.0.0.1:9/v1", llm_api_key="sk-unused", chat_model="m"
)
TELEGRAM_PRIVATE = telegram_profile(DEFAULT_SETTINGS, is_group=False)
TELEGRAM_GROUP = telegram_profile(DEFAULT_SETTINGS, is_group=True)
DISCORD = discord_profile(DEFAULT_SETTINGS)

__all__ = ["DEFAULT_SETTINGS", "DISCORD", "TELEGRAM_GROUP", "TELEGRAM_PRIVATE"]
