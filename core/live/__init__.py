"""Live replies: the streaming engine every adapter shares (platform-agnostic; imports only core.events/errors).

Adapters implement `Surface`, pick a `Profile`, share one `Budget` per bot, and run one `LiveReply` per answer.
"""

from core.live.budget import (
    DISCORD_REQUESTS_PER_SECOND,
    TELEGRAM_REQUESTS_PER_SECOND,
    Budget,
    Clock,
    LoopClock,
    Priority,
)
from core.live.engine import LiveReply, ReasoningMode
from core.live.surface import (
    DISCORD,
    TELEGRAM_GROUP,
    TELEGRAM_PRIVATE,
    Entity,
    Handle,
    Labels,
    Markup,
    Profile,
    Rendered,
    ReplyResult,
    Surface,
    telegram_profile,
)

__all__ = [
    "DISCORD",
    "DISCORD_REQUESTS_PER_SECOND",
    "TELEGRAM_GROUP",
    "TELEGRAM_PRIVATE",
    "TELEGRAM_REQUESTS_PER_SECOND",
    "Budget",
    "Clock",
    "Entity",
    "Handle",
    "Labels",
    "LiveReply",
    "LoopClock",
    "Markup",
    "Priority",
    "Profile",
    "ReasoningMode",
    "Rendered",
    "ReplyResult",
    "Surface",
    "telegram_profile",
]
