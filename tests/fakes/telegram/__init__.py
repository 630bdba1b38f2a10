"""A fake Telegram Bot API server (aiohttp, 127.0.0.1) enforcing the real rules, for end-to-end bot tests.

Test code only; imports nothing from `core` or `bots`.
"""

from .formatting import Entity, EntityParseError, Formatted, format_text, utf16_len
from .limits import RateLimits
from .objects import Call, ChatAction, Draft, FakeChat, FakeUser, StoredFile, StoredMessage, WebhookConfig
from .server import SECRET_HEADER, FakeTelegram

__all__ = [
    "SECRET_HEADER",
    "Call",
    "ChatAction",
    "Draft",
    "Entity",
    "EntityParseError",
    "FakeChat",
    "FakeTelegram",
    "FakeUser",
    "Formatted",
    "RateLimits",
    "StoredFile",
    "StoredMessage",
    "WebhookConfig",
    "format_text",
    "utf16_len",
]
