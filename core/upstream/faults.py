"""Upstream failures mapped to core errors, in one place: HTTP statuses, OpenAI-style error objects, httpx errors.

Also `Secret`, which keeps the API key out of reprs and scrubs it from upstream words kept for logs.
"""

from __future__ import annotations

import math
from datetime import UTC
from email.utils import parsedate_to_datetime

import httpx

from core.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from core.upstream.chunks import ErrorInfo

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
    if status == 404:
        return UpstreamRejectedError(
            detail, status=404, user_message="The model service does not know this model (or the address)."
        )
    if status is not None and status < 500:
        return UpstreamRejectedError(detail, status=status)
    return unavailable(detail, status=status, retryable=status in RETRY_STATUSES)


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


def transport_error(exc: httpx.HTTPError) -> UpstreamUnavailableError:
    """httpx failures: connection trouble is worth a retry, a timeout (already a long wait) is not."""
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return unavailable(f"timeout: {type(exc).__name__}", retryable=False)
    retryable = isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError | httpx.ConnectTimeout)
    return unavailable(f"connection failed: {type(exc).__name__}", retryable=retryable)


def unavailable(detail: str, *, status: int | None = None, retryable: bool) -> UpstreamUnavailableError:
    error = UpstreamUnavailableError(detail, status=status)
    error.retryable = retryable  # per instance: a 500 or a stall is not worth repeating, a 503 is
    return error


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
