"""Parley's core: the one surface adapters import from (`from core import ...`).

Adapters never import `core.store`, `core.upstream`, SQLAlchemy or httpx; tests/unit/test_architecture.py checks.
"""

from core import texts  # what users read, written once for every adapter
from core.access import Access
from core.assistant import Assistant, UsageReport
from core.bootstrap import open_assistant, upgrade_database
from core.cluster import Cluster, OrderTicket
from core.conversation import (
    ChatAdminCheck,
    ConversationKey,
    Document,
    Quote,
    Turn,
    UserRef,
    Voice,
    conversation_for,
)
from core.discussion import Discussion
from core.documents import check_document_bytes
from core.errors import (
    AccessDeniedError,
    ChatAdminRequiredError,
    ConfigError,
    FormattingRejectedError,
    ImageError,
    InputError,
    ParleyError,
    QuotaExceededError,
    ReplyTimeoutError,
    StoreError,
    StreamInterruptedError,
    SurfaceError,
    SurfaceRateLimitError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from core.events import (
    Completed,
    Event,
    Finished,
    Heard,
    Image,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolRunning,
    Usage,
)
from core.images import sniff_mime, validate_image, validate_user_image
from core.inputs import check_turn_bytes
from core.live import (
    Budget,
    Entity,
    Handle,
    Labels,
    LiveReply,
    Profile,
    Rendered,
    ReplyResult,
    Surface,
)
from core.logs import configure_logging, secrets_redacted
from core.metrics import Metrics, serve_metrics
from core.personas import SystemPrompt
from core.replies import show_message, show_reply
from core.settings import DatabaseSettings, Settings, load_settings
from core.store import Forgotten, Stats

__all__ = [
    "Access",
    "AccessDeniedError",
    "Assistant",
    "Budget",
    "ChatAdminCheck",
    "ChatAdminRequiredError",
    "Cluster",
    "Completed",
    "ConfigError",
    "ConversationKey",
    "DatabaseSettings",
    "Discussion",
    "Document",
    "Entity",
    "Event",
    "Finished",
    "Forgotten",
    "FormattingRejectedError",
    "Handle",
    "Heard",
    "Image",
    "ImageError",
    "InputError",
    "Labels",
    "LiveReply",
    "Metrics",
    "OrderTicket",
    "ParleyError",
    "Profile",
    "QuotaExceededError",
    "Quote",
    "ReasoningDelta",
    "Rendered",
    "ReplyResult",
    "ReplyTimeoutError",
    "Settings",
    "Stats",
    "StoreError",
    "StreamInterruptedError",
    "Surface",
    "SurfaceError",
    "SurfaceRateLimitError",
    "SystemPrompt",
    "TextDelta",
    "ToolCall",
    "ToolRunning",
    "Turn",
    "UpstreamAuthError",
    "UpstreamError",
    "UpstreamRateLimitError",
    "UpstreamRejectedError",
    "UpstreamUnavailableError",
    "Usage",
    "UsageReport",
    "UserRef",
    "Voice",
    "check_document_bytes",
    "check_turn_bytes",
    "configure_logging",
    "conversation_for",
    "load_settings",
    "open_assistant",
    "secrets_redacted",
    "serve_metrics",
    "show_message",
    "show_reply",
    "sniff_mime",
    "texts",
    "upgrade_database",
    "validate_image",
    "validate_user_image",
]
