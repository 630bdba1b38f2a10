"""Log formatting: plain text or one JSON object per line, carrying the conversation and request ids.

The ids live in context variables the assistant sets per reply, so every line logged while a reply runs
(in that task) carries them without threading them through each call.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO

request_id: ContextVar[str | None] = ContextVar("parley_request_id", default=None)
conversation_id: ContextVar[str | None] = ContextVar("parley_conversation_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries whose DEBUG lines quote payloads: aiosqlite the SQL parameters (message text), the platform
# libraries the updates they receive, httpcore the request lines. Held at INFO unless LOG_CONTENT=true.
CONTENT_LOGGERS = ("aiosqlite", "telegram", "discord", "httpcore", "httpx", "websockets", "aiohttp")


def new_request_id() -> str:
    """A short random id for one reply: enough to find its lines, too short to be an identity."""
    return uuid.uuid4().hex[:16]


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, ids when known, exception when any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        conversation = getattr(record, "conversation", None) or conversation_id.get()
        request = getattr(record, "request", None) or request_id.get()
        if conversation is not None:
            line["conversation"] = str(conversation)
        if request is not None:
            line["request"] = str(request)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line, with ` [request=...]` appended while a reply runs."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request = request_id.get()
        return f"{text} [request={request}]" if request else text


def configure_logging(
    level: int | str,
    *,
    log_format: Literal["text", "json"] = "text",
    log_content: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Send every record at `level` or above to `stream` (stderr) in `log_format`; replaces earlier handlers.

    Without `log_content`, the libraries in CONTENT_LOGGERS log at INFO at most, so no message text slips
    into a DEBUG log through them; our own modules log text only when `log_content` is set.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CONTENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if log_content else logging.INFO)
