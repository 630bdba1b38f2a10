"""`parley run telegram`: `run_telegram(assistant, settings)`; the adapter is in bots/telegram_adapter/."""

from bots.telegram_adapter import TelegramBot, TelegramSurface, build_application, run_telegram

__all__ = ["TelegramBot", "TelegramSurface", "build_application", "run_telegram"]
