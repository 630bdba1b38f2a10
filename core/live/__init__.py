"""Live replies: the streaming engine every adapter shares (platform-agnostic; imports only core.events/errors).

Adapters implement `Surface`, build their `Profile`s (limits, pace, markup dialect), share one `Budget` per
bot, and run one `LiveReply` per answer.
"""

from core.live.budget import Budget, Clock, LoopClock, Priority
from core.live.engine import LiveReply, ReasoningMode
from core.live.surface import (
    Dialect,
    Entity,
    Handle,
    Labels,
    Markup,
    Profile,
    Rendered,
    ReplyResult,
    Surface,
)

__all__ = [
    "Budget",
    "Clock",
    "Dialect",
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
]
