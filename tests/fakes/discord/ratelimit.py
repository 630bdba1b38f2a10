"""Discord-style rate limits for the fake: per-route buckets keyed by major parameter, and a global limit.

Pure (clocks injected); the REST layer turns a Verdict into headers or a 429. Source: Discord docs "Rate Limits".
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BucketRule:
    name: str
    limit: int
    per_seconds: float


# Per-route limits as real Discord reports them in X-RateLimit-* headers (they are not documented
# constants): message writes in a channel, creates and edits together, 5 / 5 s (one bucket hash for
# POST and PATCH /channels/{id}/messages; discord-api-docs#20); webhooks 5 / 2 s per token.
MESSAGE_WRITES = BucketRule("messages.write", 5, 5.0)
DEFAULT_RULES: dict[str, BucketRule] = {
    "POST /channels/{channel_id}/messages": MESSAGE_WRITES,
    "PATCH /channels/{channel_id}/messages/{message_id}": MESSAGE_WRITES,
    "DELETE /channels/{channel_id}/messages/{message_id}": BucketRule("messages.delete", 5, 1.0),
    "POST /channels/{channel_id}/typing": BucketRule("typing", 5, 5.0),
    "POST /webhooks/{application_id}/{token}": BucketRule("webhook", 5, 2.0),
    "PATCH /webhooks/{application_id}/{token}/messages/@original": BucketRule("webhook", 5, 2.0),
    "PATCH /webhooks/{application_id}/{token}/messages/{message_id}": BucketRule("webhook", 5, 2.0),
}
DEFAULT_ROUTE_RULE = BucketRule("route", 50, 1.0)
GLOBAL_PER_SECOND = 50  # Rate Limits: "All bots can make up to 50 requests per second to our API"


@dataclass(slots=True)
class RateLimitPolicy:
    """Mutable at run time: tests tighten limits or switch them off (`enabled = False`).

    `announce_buckets=False` sends no X-RateLimit-* headers on successful answers, so discord.py cannot
    wait before a bucket runs out and the bot's own pace is what keeps it clear of 429s. Discord may do
    the same: "Your app should not rely on the headers" and must handle a 429's `retry_after` (Rate Limits).
    """

    enabled: bool = True
    global_per_second: int = GLOBAL_PER_SECOND
    rules: dict[str, BucketRule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    default_rule: BucketRule = DEFAULT_ROUTE_RULE
    announce_buckets: bool = True

    def set_rule(self, route: str, limit: int, per_seconds: float) -> None:
        """Override one route's bucket, e.g. set_rule("POST /channels/{channel_id}/messages", 5, 1.0)."""
        name = self.rules[route].name if route in self.rules else route
        self.rules[route] = BucketRule(name, limit, per_seconds)

    def scale(self, speed: float) -> None:
        """Every window `speed` times as long (0.1: Discord's 5 s bucket lasts 0.5 s); shared buckets stay shared."""
        self.rules = {r: BucketRule(b.name, b.limit, b.per_seconds * speed) for r, b in self.rules.items()}

    def rule_for(self, route: str) -> BucketRule:
        return self.rules.get(route, self.default_rule)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0
    is_global: bool = False


@dataclass(slots=True)
class _Window:
    started: float
    used: int = 0


def _round_up(seconds: float) -> float:
    # Rounded up so a client that waits exactly this long finds the window reset.
    return max(math.ceil(seconds * 1000) / 1000, 0.001)


class RateLimiter:
    def __init__(
        self,
        policy: RateLimitPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._wall = wall_clock
        self._windows: dict[tuple[str, str], _Window] = {}
        self._global = _Window(started=-math.inf)
        self._injected: dict[str, list[float]] = {}  # route -> retry_after of 429s to answer next

    def inject_429(self, route: str, retry_after: float) -> None:
        """The next request on `route` gets a 429 with no X-RateLimit headers and no warning before it
        (as Discord's shared and sub-limits do); its bucket is then held for `retry_after`."""
        self._injected.setdefault(route, []).append(retry_after)

    def _window(self, key: tuple[str, str], per_seconds: float, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now >= window.started + per_seconds:
            window = self._windows[key] = _Window(started=now)
        return window

    def check(self, route: str, major: str, *, counts_globally: bool) -> Verdict:
        """Spend one request on `route` for `major` (channel id, token...) or refuse it with a 429 verdict."""
        if not self.policy.enabled:
            return Verdict(allowed=True, headers={})
        now = self._clock()
        if counts_globally:
            if now >= self._global.started + 1.0:
                self._global = _Window(started=now)
            if self._global.used >= self.policy.global_per_second:
                retry = _round_up(self._global.started + 1.0 - now)
                headers = {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
                return Verdict(
                    allowed=False, headers=headers | _retry_headers(retry), retry_after=retry, is_global=True
                )
            self._global.used += 1
        rule = self.policy.rule_for(route)
        if self._injected.get(route):
            retry = self._injected[route].pop(0)
            # Exhaust the bucket until now + retry: a request before then is refused again.
            self._windows[(rule.name, major)] = _Window(started=now + retry - rule.per_seconds, used=rule.limit)
            return Verdict(allowed=False, headers=_retry_headers(retry), retry_after=retry)
        window = self._window((rule.name, major), rule.per_seconds, now)
        reset_after = _round_up(window.started + rule.per_seconds - now)
        headers = {
            "X-RateLimit-Limit": str(rule.limit),
            "X-RateLimit-Reset": f"{self._wall() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": hashlib.sha1(rule.name.encode()).hexdigest()[:32],
        }
        if window.used >= rule.limit:
            headers |= {"X-RateLimit-Remaining": "0", "X-RateLimit-Scope": "user"} | _retry_headers(reset_after)
            return Verdict(allowed=False, headers=headers, retry_after=reset_after)
        window.used += 1
        headers["X-RateLimit-Remaining"] = str(rule.limit - window.used)
        return Verdict(allowed=True, headers=headers if self.policy.announce_buckets else {})


def _retry_headers(retry_after: float) -> dict[str, str]:
    # discord.py treats a 429 without a Via header as a Cloudflare ban and does not retry it.
    return {"Retry-After": str(math.ceil(retry_after)), "Via": "1.1 google"}
