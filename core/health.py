"""/readyz's (and /healthz's) checks: the database (one trivial query) and the upstream (`GET /models`, cached).

Split from core/assistant.py, whose `Assistant.health` runs `probe` and `UpstreamHealth.state`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from core.errors import UpstreamError

HEALTH_TIMEOUT_SECONDS = 3.0  # /readyz answers within this, whatever hangs
# The upstream is asked (with our key) at most this often, however many /readyz requests come.
HEALTH_CACHE_SECONDS = 15.0


class UpstreamHealth:
    """The upstream's state for /readyz: kept HEALTH_CACHE_SECONDS, one probe shared by concurrent callers.

    The upstream counts as reachable when `GET /models` answers at all (a gateway without that endpoint
    still answers 404), except 401/403: a refused key fails every reply too.
    """

    def __init__(self, list_models: Callable[[], Awaitable[list[str]]], clock: Callable[[], float]) -> None:
        self._list_models = list_models
        self._clock = clock
        self._last: tuple[float, str] | None = None  # (checked at, state) of the last probe
        self._probe: asyncio.Task[str] | None = None  # the probe in flight, shared by callers

    async def state(self, timeout_seconds: float) -> str:
        now = self._clock()
        if self._last is not None:
            checked_at, state = self._last
            if 0 <= now - checked_at < HEALTH_CACHE_SECONDS:  # a clock set back counts as expired
                return state
        if self._probe is None:

            def remember(probe: asyncio.Task[str]) -> None:
                self._probe = None
                if not probe.cancelled():
                    self._last = (now, probe.result())

            self._probe = asyncio.create_task(probe(self._answers(), timeout_seconds))
            self._probe.add_done_callback(remember)
        # Shielded: a caller that goes away does not cancel the probe the others wait for.
        return await asyncio.shield(self._probe)

    async def _answers(self) -> None:
        try:
            await self._list_models()
        except UpstreamError as exc:
            if exc.status is None or exc.status in (401, 403):
                raise


async def probe(check: Awaitable[None], timeout_seconds: float) -> str:
    """ "ok", or a short reason why `check` failed or did not finish within `timeout_seconds`."""
    try:
        async with asyncio.timeout(timeout_seconds):
            await check
    except TimeoutError:
        return f"no answer within {timeout_seconds:g}s"
    except Exception as exc:  # a probe reports any failure; /readyz is the top of its own handler
        return type(exc).__name__  # the class only: messages may quote URLs
    return "ok"
