"""Log formatting: plain text or one JSON object per line, carrying the conversation and request ids.

The ids live in context variables the assistant sets per reply, so every line logged while a reply runs
(in that task) carries them without threading them through each call.

Every record reaching the handler `configure_logging` installs passes the process's `Redactor` first:
registered secrets (`secrets_redacted`) and Discord interaction/webhook tokens are replaced, whichever
library logged them, in the message, its arguments, exception text and stack.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO
from urllib.parse import quote

request_id: ContextVar[str | None] = ContextVar("parley_request_id", default=None)
conversation_id: ContextVar[str | None] = ContextVar("parley_conversation_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries whose DEBUG lines quote payloads: aiosqlite the SQL parameters (message text), the platform
# libraries the updates they receive, httpcore the request lines. Held at INFO unless LOG_CONTENT=true.
CONTENT_LOGGERS = ("aiosqlite", "telegram", "discord", "httpcore", "httpx", "websockets", "aiohttp")


REDACTED = "<redacted>"
# Shorter values are not redacted: replacing every "abc" in every line would garble the logs, not guard them.
MIN_SECRET_CHARS = 8
# Discord interaction and webhook tokens let anyone post as the bot (interactions: for 15 minutes) and
# are not known in advance. They travel in URL paths (discord.py logs routes at DEBUG), e.g.
# /interactions/{id}/{token}/callback and /webhooks/{application_id}/{token}/messages/@original
# (https://discord.com/developers/docs/interactions/receiving-and-responding), and in payload fields
# ("token" of INTERACTION_CREATE, which discord.py logs whole at DEBUG; PTB logs `secret_token`).
# Interaction tokens also have a known shape wherever they appear: base64 of "interaction:<id>:...".
# All three patterns are linear: one run of a single class after a literal anchor.
_INTERACTION_TOKEN = re.compile(r"aW50ZXJhY3Rpb246[A-Za-z0-9_.\-]+")
_TOKEN_IN_PATH = re.compile(r"(/(?:interactions|webhooks)/\d+/)[A-Za-z0-9_.\-]+")
_TOKEN_FIELD = re.compile(r"""(token\\?['"]?[ \t]*[:=][ \t]*\\?['"]?)[^'"\\\s,&;)}\]]+""", re.IGNORECASE)


class Redactor(logging.Filter):
    """Rewrites each record with secrets replaced by REDACTED; installed on the root handler."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: Counter[str] = Counter()
        self._forms: tuple[str, ...] = ()

    def add(self, secret: str) -> None:
        if len(secret) >= MIN_SECRET_CHARS:
            self._secrets[secret] += 1
            self._refresh()

    def remove(self, secret: str) -> None:
        if self._secrets[secret] > 1:
            self._secrets[secret] -= 1
        else:
            self._secrets.pop(secret, None)
        self._refresh()

    def _refresh(self) -> None:
        forms: set[str] = set()
        for secret in self._secrets:
            forms.update((secret, quote(secret, safe="")))
            # A Telegram token is `<bot id>:<secret>`; the id is public, the part after the colon is not.
            _, colon, tail = secret.partition(":")
            if colon and len(tail) >= MIN_SECRET_CHARS:
                forms.add(tail)
        self._forms = tuple(sorted(forms, key=len, reverse=True))  # whole forms before their parts

    def redact(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        text = _INTERACTION_TOKEN.sub(REDACTED, text)
        text = _TOKEN_IN_PATH.sub(rf"\g<1>{REDACTED}", text)
        return _TOKEN_FIELD.sub(rf"\g<1>{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: logging would print them raw to stderr, so drop them
            message = f"{record.msg} (arguments not formattable)"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


# One per process, like the logging tree it filters: adapters register their tokens as they start.
_REDACTOR = Redactor()


@contextlib.contextmanager
def secrets_redacted(*secrets: str | None) -> Iterator[None]:
    """Keep `secrets` (and their percent-encoded forms) out of every log line for the life of the block.

    configure_logging's handler always redacts; handlers someone else put on the root logger (an
    embedding application's, pytest's) get the Redactor for the block too.
    """
    present = [secret for secret in secrets if secret]
    for secret in present:
        _REDACTOR.add(secret)
    added = [h for h in logging.getLogger().handlers if _REDACTOR not in h.filters]
    for handler in added:
        handler.addFilter(_REDACTOR)
    try:
        yield
    finally:
        for handler in added:
            handler.removeFilter(_REDACTOR)
        for secret in present:
            _REDACTOR.remove(secret)


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
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
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

    Every record passes the Redactor (see `secrets_redacted`). Without `log_content`, the libraries in
    CONTENT_LOGGERS log at INFO at most, so no message text slips into a DEBUG log through them; our own
    modules log text only when `log_content` is set.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_REDACTOR)  # on the handler, not a logger: it sees every library's records
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CONTENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if log_content else logging.INFO)
    # pypdf warns once per damaged object it repairs (thousands of lines for a hostile PDF), quoting its bytes.
    logging.getLogger("pypdf").setLevel(logging.NOTSET if log_content else logging.ERROR)
