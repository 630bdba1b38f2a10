"""A wall clock the test sets: the `clock=` (Unix seconds) of `open_assistant`, `Store`, `Gatekeeper` and
`UpstreamClient`, so that "today" and "this minute" are what the test says, whatever the real time is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


class FakeWallClock:
    """Stands still until the test moves it (`clock.at = ...`, `clock.advance(seconds)`)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
