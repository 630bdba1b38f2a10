"""Upstream failures mapped to core errors, in one place: HTTP statuses, OpenAI-style error objects, httpx errors.

Like httpx's own `map_httpcore_exceptions`, `upstream_faults()` and `image_faults()` are the context managers
every call into httpx runs under, so no other module turns an httpx exception into one of ours. Whether an
error is retried is its `retryable`: fixed by its class, or for UpstreamUnavailableError by the `Outage` set
here (core/errors.py draws the tree). Also `Secret`, which keeps the API key out of reprs and scrubs it from
upstream words kept for logs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from email.utils import parsedate_to_datetime

import httpx

from core.errors import (
    Outage,
    ReplyTimeoutError,
    ToolsRefusedError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from core.upstream.chunks import ErrorInfo
from core.upstream.guard import image_failed

RETRY_STATUSES = frozenset({429, 502, 503, 504})
ERROR_DETAIL_MAX_CHARS = 300

TOO_LONG_MESSAGE = "This conversation is too long for the model. Use /reset to start a new one."
CONTEXT_HINTS = (
    "context_length",
    "context length",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "input is too long",
    "reduce the length",
    "maximum prompt length",
)
# A refusal of tool calling, as gateways word it: OpenAI `"param": "tools"` ("Unsupported parameter: 'tools' is
# not supported with this model."), Ollama "<model> does not support tools", vLLM "\"auto\" tool choice requires
# --enable-auto-tool-choice", OpenRouter's 404 "No endpoints found that support tool use". A subject and a refusal
# must both be named: "a 'tool' message must follow 'tool_calls'" is a bad request, not a refusal.
TOOLS_PARAMS = frozenset({"tools", "tool_choice"})
TOOLS_SUBJECTS = ("tools", "tool use", "tool calling", "tool choice", "function calling")
TOOLS_REFUSALS = ("not support", "unsupported", "no endpoints found that support", "requires --enable-auto-tool-choice")


class Secret:
    """Holds the API key; its repr never shows it, and `redact` scrubs it from upstream text."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "'**********'"

    def redact(self, text: str) -> str:
        return text.replace(self._value, "[redacted]") if self._value else text


def error_for(
    status: int | None, info: ErrorInfo, secret: Secret, *, retry_after: float | None = None
) -> UpstreamError:
    """THE mapping from an HTTP status and/or an OpenAI-style error object to an UpstreamError.

    `status` is None for error objects that arrived in a 200 body or mid-stream; then the error's code or
    type decides. The detail keeps upstream words for logs (key scrubbed, shortened); user messages never do.
    """
    words = secret.redact(" ".join(part for part in (info.type, info.code, info.message) if part))
    detail = f"HTTP {status}: {words}" if status else f"error object: {words}"
    detail = detail[:ERROR_DETAIL_MAX_CHARS]
    if status is None:
        status = status_from(info)
    if status in (401, 403):
        return UpstreamAuthError(detail, status=status)
    if status == 429:
        wait = (
            f"The model service is busy. Please try again in {math.ceil(retry_after)} seconds." if retry_after else None
        )
        return UpstreamRateLimitError(detail, status=429, retry_after=retry_after, user_message=wait)
    lowered = f"{info.code} {info.type} {info.message}".lower()
    if status == 413 or any(hint in lowered for hint in CONTEXT_HINTS):
        return UpstreamRejectedError(detail, status=status, user_message=TOO_LONG_MESSAGE)
    if status in (400, 404, 422) and refuses_tools(info):
        return ToolsRefusedError(detail, status=status)
    if status == 404:
        return UpstreamRejectedError(
            detail, status=404, user_message="The model service does not know this model (or the address)."
        )
    if status is not None and status < 500:
        return UpstreamRejectedError(detail, status=status)
    outage = Outage.OVERLOADED if status in RETRY_STATUSES else Outage.SERVER  # a 500: a bug, met again
    return UpstreamUnavailableError(detail, status=status, outage=outage)


def refuses_tools(info: ErrorInfo) -> bool:
    """Whether an error object says the request's `tools` are not accepted (by the model or the gateway)."""
    if info.param in TOOLS_PARAMS:
        return True
    lowered = f"{info.code} {info.message}".lower()
    if info.param.startswith("tools[") or "tools[" in lowered:
        return False  # about one tool's definition (its schema): the gateway takes tools
    return any(subject in lowered for subject in TOOLS_SUBJECTS) and any(no in lowered for no in TOOLS_REFUSALS)


def status_from(info: ErrorInfo) -> int | None:
    """An HTTP-like status for an error object without one: a numeric code, else its type or code words."""
    if info.code.isdigit() and 400 <= int(info.code) < 600:
        return int(info.code)
    words = f"{info.type} {info.code}".lower()
    for hints, status in (
        (("auth", "api_key", "permission"), 401),
        (("rate_limit", "rate limit"), 429),
        (("not_found",), 404),
        (("invalid_request", "bad_request"), 400),
        (("overloaded", "unavailable"), 503),
    ):
        if any(hint in words for hint in hints):
            return status
    return None


AUDIO_REJECTED_MESSAGE = "The transcription service could not read that recording."


@contextmanager
def transcription_faults() -> Iterator[None]:
    """A transcription's rejections (400 a format it can't read, 413 a file too large) say so, not that the
    conversation is too long; every other failure keeps the chat call's notice."""
    try:
        yield
    except UpstreamRejectedError as exc:
        if exc.status == 404:
            raise
        raise UpstreamRejectedError(str(exc), status=exc.status, user_message=AUDIO_REJECTED_MESSAGE) from None


@contextmanager
def upstream_faults() -> Iterator[None]:
    """Run a call into httpx (send, read) with its failures raised as UpstreamErrors (`transport_error`)."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise transport_error(exc) from exc


def transport_error(exc: httpx.HTTPError) -> UpstreamUnavailableError:
    """httpx failures: connection trouble is worth a retry, a timeout (already a long wait) is not."""
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout | httpx.NetworkError | httpx.RemoteProtocolError):
        return UpstreamUnavailableError(f"connection failed: {name}", outage=Outage.CONNECTION)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamUnavailableError(f"timeout: {name}", outage=Outage.TIMEOUT)
    outage = Outage.MALFORMED if isinstance(exc, httpx.DecodingError) else Outage.UNSENDABLE
    return UpstreamUnavailableError(f"connection failed: {name}", outage=outage)


def malformed(what: str, exc: Exception) -> UpstreamUnavailableError:
    """An answer that is not in the API's shape; `exc` names the problem, never the content."""
    return UpstreamUnavailableError(f"malformed {what}: {exc}", outage=Outage.MALFORMED)


def reply_timeout() -> ReplyTimeoutError:
    return ReplyTimeoutError("the reply's deadline (REPLY_TIMEOUT_SECONDS) passed")


@contextmanager
def image_faults() -> Iterator[None]:
    """Run an image download with every failure raised as the one ImageError (core.upstream.guard)."""
    try:
        yield
    except TimeoutError:
        raise image_failed("image download timed out") from None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # ValueError: "Invalid IPv6 URL"
        raise image_failed(f"image download failed: {type(exc).__name__}: {exc}") from None


def retry_after_seconds(headers: httpx.Headers, *, now: float) -> float | None:
    """Seconds from `Retry-After` (delta-seconds or an HTTP-date, counted from `now` in Unix seconds) or
    OpenAI's `retry-after-ms`.
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None
