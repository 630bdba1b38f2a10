"""The Telegram adapter (python-telegram-bot 22): `run_telegram(assistant, settings)` runs the bot.

surface.py maps the Bot API onto core.live's Surface, inbound.py reads messages, handlers.py answers them,
app.py owns the Application (polling or webhook.py). Imports PTB, aiohttp and `core` only.
"""

from bots.telegram_adapter.app import build_application, run_telegram
from bots.telegram_adapter.handlers import TelegramBot
from bots.telegram_adapter.surface import TelegramSurface

__all__ = ["TelegramBot", "TelegramSurface", "build_application", "run_telegram"]
