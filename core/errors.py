"""The Parley error tree. Every error carries a short, plain, secret-free `user_message`.

    ParleyError                     .user_message
    ├── ConfigError                 .setting: the env name that is missing or invalid
    ├── InputError                  the user's input is refused (too long, unsupported)
    ├── AccessDeniedError           the user may not use the bot here (ALLOWED_USERS/CHATS, grants, admin-only)
    ├── ChatAdminRequiredError      a member, not an admin, tried to change a conversation the whole group shares
    ├── QuotaExceededError          USER_REQUESTS_PER_MINUTE or USER_TOKENS_PER_DAY reached, .retry_after seconds
    ├── UpstreamError               .status, .retryable: repeat the request before its first event? (R: yes)
    │   ├── UpstreamAuthError       401/403: the key is wrong or lacks access
    │   ├── UpstreamRateLimitError  R 429, .retry_after seconds (or None)
    │   ├── UpstreamUnavailableError  .outage says why: R for 502/503/504, a connection failure, a dropped
    │   │   │                       stream; not for another 5xx, a timeout, a malformed answer, an unsendable request
    │   │   └── ReplyTimeoutError   REPLY_TIMEOUT_SECONDS passed before the answer ended (Outage.TIMEOUT)
    │   ├── UpstreamRejectedError   400/404/413/422: the request itself was refused
    │   │   └── ToolsRefusedError   the gateway or model does not take `tools` (asked again without them)
    │   └── StreamInterruptedError  the stream broke after it started, .partial_text kept
    ├── ImageError                  bad base64, not an image, over IMAGE_MAX_BYTES, download failed
    ├── StoreError                  the database failed (raised by core.store in place of SQLAlchemy errors)
    └── SurfaceError                raised by adapters' surfaces, handled by core.live
        ├── SurfaceRateLimitError   .retry_after seconds
        └── FormattingRejectedError the platform refused the markup

User messages are built from facts we control, never from `str(exc)` of a lower layer, so that no
upstream body, URL or key can reach a chat. This module imports nothing from the rest of core.
"""

from __future__ import annotations

from enum import Enum
from typing import ClassVar


class ParleyError(Exception):
    """Base of every error Parley raises on purpose."""

    default_message = "Something went wrong. Please try again."
    # Ending a live reply, the error becomes a short note under what was shown (core/live/engine.py);
    # False: nothing is shown and the error reaches the adapter, which decides (a refusal).
    noted_in_reply: ClassVar[bool] = True

    def __init__(self, detail: str = "", *, user_message: str | None = None) -> None:
        super().__init__(detail or user_message or self.default_message)
        self.user_message = user_message or self.default_message


class ConfigError(ParleyError):
    default_message = "Parley is not configured correctly."

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class InputError(ParleyError):
    default_message = "That message could not be handled."


class AccessDeniedError(ParleyError):
    """Adapters answer it in a direct chat and stay silent in a group (so a reply never shows it as a note)."""

    default_message = "Sorry, this bot is private. Ask its operator for access."
    noted_in_reply = False


class ChatAdminRequiredError(ParleyError):
    """`/model name`, `/system text` or `/reset` in a group whose history is shared (GROUP_HISTORY=chat) by
    someone who is neither an admin of that chat nor in ADMINS. Unlike AccessDeniedError it is answered in
    groups too: the caller may talk to the bot there, only not change the conversation for everyone."""

    default_message = "Only admins can change the conversation everyone here shares."


class QuotaExceededError(ParleyError):
    """A per-user limit is reached; `retry_after` is the number of seconds until the user may continue."""

    default_message = "You have reached your limit. Please try again later."

    def __init__(self, detail: str = "", *, retry_after: float, user_message: str | None = None) -> None:
        super().__init__(detail, user_message=user_message)
        self.retry_after = retry_after


class UpstreamError(ParleyError):
    default_message = "The model service failed. Please try again."

    def __init__(self, detail: str = "", *, status: int | None = None, user_message: str | None = None) -> None:
        super().__init__(detail, user_message=user_message)
        self.status = status

    @property
    def retryable(self) -> bool:
        """Whether the same request, repeated before its first event, may well succeed. Fixed per class,
        except UpstreamUnavailableError, whose `outage` decides."""
        return False


class UpstreamAuthError(UpstreamError):
    default_message = "The model service refused our credentials. The bot's operator needs to check the API key."


class UpstreamRateLimitError(UpstreamError):
    default_message = "The model service is busy right now. Please try again in a moment."

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = 429,
        retry_after: float | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(detail, status=status, user_message=user_message)
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return True  # after Retry-After, unless that is too long (core.upstream.client)


class Outage(Enum):
    """Why the upstream was unavailable; decides whether the same request is worth repeating."""

    OVERLOADED = "overloaded"  # 502/503/504: retried
    CONNECTION = "connection"  # connection failed or timed out, or was dropped: retried
    DROPPED = "dropped"  # the stream ended before its finish_reason: retried
    SERVER = "server"  # another 5xx, or an error object naming no status: repeating meets it again
    TIMEOUT = "timeout"  # a read/write/pool timeout, no byte within the idle timeout: already a long wait
    MALFORMED = "malformed"  # the answer is not in the API's shape (JSON, chunks, encoding)
    UNSENDABLE = "unsendable"  # httpx cannot send the request as configured (scheme, proxy, protocol)

    @property
    def retryable(self) -> bool:
        return self in (Outage.OVERLOADED, Outage.CONNECTION, Outage.DROPPED)


class UpstreamUnavailableError(UpstreamError):
    """5xx, connection failure, timeout or malformed answer before the first event; `outage` says which."""

    default_message = "The model service is unavailable right now. Please try again later."

    def __init__(
        self,
        detail: str = "",
        *,
        outage: Outage = Outage.OVERLOADED,
        status: int | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(detail, status=status, user_message=user_message)
        self.outage = outage

    @property
    def retryable(self) -> bool:
        return self.outage.retryable


class ReplyTimeoutError(UpstreamUnavailableError):
    """The whole reply took longer than REPLY_TIMEOUT_SECONDS (a stream can stay busy with keep-alives)."""

    default_message = "The answer took too long and was stopped."

    def __init__(self, detail: str = "", *, user_message: str | None = None) -> None:
        super().__init__(detail, outage=Outage.TIMEOUT, user_message=user_message)


class UpstreamRejectedError(UpstreamError):
    default_message = "The model service refused this request."


class ToolsRefusedError(UpstreamRejectedError):
    """The request was refused because it offered `tools` (the model or gateway has no tool calling)."""


class StreamInterruptedError(UpstreamError):
    """The stream broke after it had started; what arrived is in `partial_text`."""

    default_message = "The answer was cut short."

    def __init__(
        self,
        detail: str = "",
        *,
        partial_text: str = "",
        status: int | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(detail, status=status, user_message=user_message)
        self.partial_text = partial_text


class ImageError(ParleyError):
    default_message = "The image could not be used."


# What a user sees for any image of a model's answer that failed (refused address, closed port, 404,
# timeout, oversize, not an image): one wording, so error messages cannot be used to probe a network.
IMAGE_NOT_SHOWN = "An image could not be shown."


class StoreError(ParleyError):
    """The database failed; the SQLAlchemy or driver error stays reachable as `__cause__`."""

    default_message = "The bot could not reach its storage. Please try again later."


class SurfaceError(ParleyError):
    default_message = "The chat platform refused the message."


class SurfaceRateLimitError(SurfaceError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after}s")
        self.retry_after = retry_after


class FormattingRejectedError(SurfaceError):
    default_message = "The chat platform refused the formatting."
