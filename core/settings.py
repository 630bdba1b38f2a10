"""Settings from the environment and `.env`: the only reader of either.

`DatabaseSettings` is enough for `parley db upgrade`; `Settings` is what the bots need.
Field names are the environment names in lower case; durations end in `_SECONDS`. A renamed setting keeps
its old name as an alias (`_renamed`), so existing deployments go on working.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.errors import ConfigError

_DEFAULT_SYSTEM_PROMPT = (
    "You are Parley, a helpful assistant in a chat app. Answer clearly and concisely; use Markdown when it helps."
)


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore")

    database_url: str = "sqlite+aiosqlite:///parley.db"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Accept the URLs operators paste (`postgres://`, `sqlite:///`) and pick the async driver."""
        value = value.strip()
        for prefix, replacement in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgresql+psycopg2://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if value.startswith(prefix):
                return replacement + value[len(prefix) :]
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


def _renamed(name: str, old_name: str) -> AliasChoices:
    """The environment names of a setting that was renamed: the new one first (it wins if both are set)."""
    return AliasChoices(name, old_name)


def _http_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


class Settings(DatabaseSettings):
    # Upstream
    llm_base_url: str
    llm_api_key: SecretStr
    chat_model: str
    image_model: str | None = None
    llm_extra_body: dict[str, Any] = Field(default_factory=dict)
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=3, ge=0, le=10)
    # Upstream calls in flight at once per process, each a connection (kept for reuse). httpx's default, 100
    # (20 kept), queued the 101st live reply of a busy process behind the others and reconnected most of them.
    llm_max_connections: int = Field(default=1000, ge=1, le=100_000)
    stream_idle_timeout_seconds: float = Field(
        default=60.0, gt=0, validation_alias=_renamed("stream_idle_timeout_seconds", "stream_idle_timeout")
    )
    reply_timeout_seconds: float = Field(default=600.0, gt=0)
    allowed_models: Annotated[tuple[str, ...], NoDecode] = ()

    # Conversation
    system_prompt: str = _DEFAULT_SYSTEM_PROMPT
    context_budget_tokens: int = Field(default=8000, ge=256)
    history_image_turns: int = Field(default=2, ge=0)
    max_input_chars: int = Field(default=16000, ge=1)
    max_system_prompt_chars: int = Field(default=4000, ge=1)  # longest prompt /system takes

    # Tools the chat model may call (core/tools)
    tool_timeout_seconds: float = Field(default=30.0, gt=0)  # per call
    tool_max_rounds: int = Field(default=5, ge=1, le=20)  # upstream requests that may run tools, per reply
    tool_result_max_chars: int = Field(default=20_000, ge=100)  # longer results are cut, with a note
    image_tool: bool = True  # offer `generate_image` to the chat model when IMAGE_MODEL is set
    mcp_config: str | None = None  # path of a JSON file of MCP servers ({"mcpServers": ...}; core/tools/mcp)

    # Access and limits ("platform:id" lists; empty ALLOWED_USERS and ALLOWED_CHATS: everyone may talk)
    allowed_users: Annotated[tuple[str, ...], NoDecode] = ()
    allowed_chats: Annotated[tuple[str, ...], NoDecode] = ()
    admins: Annotated[tuple[str, ...], NoDecode] = ()
    user_requests_per_minute: int = Field(default=20, ge=0)  # 0: unlimited
    user_tokens_per_day: int = Field(default=0, ge=0)  # 0: unlimited; the day is UTC
    redis_url: SecretStr | None = None  # per-minute counters in Redis instead of the database; may hold a password

    # Images
    image_max_bytes: int = Field(default=10_000_000, ge=1024)
    image_max_bytes_per_turn: int = Field(default=10_000_000, ge=1024)
    image_download_timeout_seconds: float = Field(  # for all the linked images of one answer
        default=20.0, gt=0, validation_alias=_renamed("image_download_timeout_seconds", "image_download_timeout")
    )
    allow_private_image_urls: bool = False  # fetch model-linked images from loopback/private addresses too
    image_dir: str = "parley-images"

    # Voice messages (core/voice.py); without TRANSCRIBE_MODEL they get a one-line hint
    transcribe_model: str | None = None
    max_audio_seconds: float = Field(default=300.0, gt=0)
    # Telegram bots download at most 20 MB with getFile (core.telegram.org/bots/api#getfile); decimal MB stays under it
    max_audio_bytes: int = Field(default=20_000_000, ge=1024)
    # Documents users send (core/documents.py)
    max_document_chars: int = Field(default=50_000, ge=100)  # of all documents of one message together
    # All files of one message together, checked before download; Telegram bots download at most 20 MB (getFile).
    max_document_bytes: int = Field(default=20_000_000, ge=1024)
    pdf_max_pages: int = Field(default=100, ge=1)
    pdf_timeout_seconds: float = Field(default=20.0, gt=0)  # reading the PDFs of one message

    # Live replies
    show_reasoning: Literal["off", "status", "full"] = "status"

    # Platforms
    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_webhook_listen: str = "0.0.0.0"
    telegram_webhook_port: int = Field(default=8080, ge=1, le=65535)
    telegram_stream_mode: Literal["auto", "draft", "edit"] = "auto"
    # Bot FAQ: about one message per second per chat, 20 per minute per group; lower only for tests.
    telegram_edit_interval_seconds: float = Field(default=1.0, gt=0)
    telegram_group_edit_interval_seconds: float = Field(default=3.0, gt=0)
    # Bot FAQ ("My bot is hitting limits"): "the API will not allow more than 30 messages per second or so".
    telegram_requests_per_second: float = Field(default=30.0, gt=0, le=1000)
    # Updates handled at once. A reply holds its update until its last text is sent, so under load (finals
    # waiting for the request budget) PTB's default 256 fills and new messages wait unread.
    telegram_concurrent_updates: int = Field(default=4096, ge=1, le=100_000)

    # Groups (Telegram and Discord)
    group_history: Literal["chat", "user"] = "chat"
    group_context_messages: int = Field(default=0, ge=0, le=200)

    # Discord
    discord_bot_token: SecretStr | None = None
    discord_api_base_url: str | None = None
    discord_gateway_url: str | None = None
    discord_guild_ids: Annotated[tuple[int, ...], NoDecode] = ()
    discord_auto_thread: bool = False
    # Per channel, message creation and editing share 5 per 5 s (discord-api-docs#20); 1.25 s between a
    # reply's calls leaves room for typing and commands. Lower only for tests.
    discord_edit_interval_seconds: float = Field(default=1.25, gt=0)
    # Rate Limits ("Global Rate Limit"): "All bots can make up to 50 requests per second to our API".
    # Live replies get 40 of them; typing, commands and reactions use the rest.
    discord_requests_per_second: float = Field(default=40.0, gt=0, le=1000)
    # Sharding across processes: this process runs DISCORD_SHARD_IDS of DISCORD_SHARD_COUNT (unset: automatic).
    discord_shard_ids: Annotated[tuple[int, ...], NoDecode] = ()
    discord_shard_count: int | None = Field(default=None, ge=1)

    # Scale-out and shutdown
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)  # in-flight replies may finish within this
    # Polling processes not leading retry taking the PostgreSQL poller lock this often.
    poll_leader_retry_seconds: float = Field(default=5.0, gt=0)

    # Observability
    log_content: bool = False  # message text in logs: off unless the operator opts in
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_listen: str = "127.0.0.1"  # this host only: /readyz calls the upstream with our key

    @field_validator("llm_base_url", "telegram_api_base_url", "discord_api_base_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("telegram_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Bot API setWebhook: secret_token is 1-256 characters of A-Z, a-z, 0-9, _ and -.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("telegram_stream_mode", "group_history", mode="before")
    @classmethod
    def _lower_choice(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("discord_gateway_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        if value is not None and not value.strip().startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return None if value is None else value.strip()

    @field_validator("chat_model", "image_model", "transcribe_model")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return None if value is None else value.strip()

    @field_validator("llm_extra_body", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object")
        return value

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("allowed_users", "allowed_chats", "admins", mode="before")
    @classmethod
    def _platform_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.replace(" ", ",").split(",") if part.strip())
        pairs = []
        for item in value:
            platform, _, subject = str(item).strip().partition(":")
            if not platform or not subject:
                raise ValueError("must be comma-separated platform:id pairs, e.g. telegram:123,discord:456")
            pairs.append(f"{platform.lower()}:{subject}")
        return tuple(pairs)

    @field_validator("show_reasoning", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _shard_ids(cls, value: Any) -> Any:
        if isinstance(value, int):
            return (value,)
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not all(part.isdigit() for part in parts):
                raise ValueError("must be comma-separated shard numbers")
            return tuple(int(part) for part in parts)
        return value

    @field_validator("discord_guild_ids", mode="before")
    @classmethod
    def _guild_ids(cls, value: Any) -> Any:
        if isinstance(value, int):
            return (value,)
        if isinstance(value, str):
            parts = [part.strip() for part in value.replace(" ", ",").split(",") if part.strip()]
            if not all(part.isdigit() for part in parts):
                raise ValueError("must be comma-separated numeric server ids")
            return tuple(int(part) for part in parts)
        return value


S = TypeVar("S", bound=DatabaseSettings)


def _env_names(cls: type[DatabaseSettings], name: str) -> str:
    """How the operator may have spelled a setting: a renamed one by either of its names."""
    field = cls.model_fields.get(name)
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, AliasChoices):
        return " or ".join(str(choice).upper() for choice in alias.choices)
    return name.upper()


def load_settings(cls: type[S] = Settings, **overrides: Any) -> S:  # type: ignore[assignment]
    """Build settings, turning pydantic's report into one `ConfigError` that names the setting."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = _env_names(cls, str(first["loc"][0])) if first["loc"] else "settings"
        if first["type"] == "missing":
            raise ConfigError(name, "is not set") from None
        problem = first["msg"].removeprefix("Value error, ")
        raise ConfigError(name, f"is invalid ({problem})") from None
