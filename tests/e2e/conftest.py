"""Shared set-up of the end-to-end tests: the fake upstream, the Discord adapter's fake Discord and its
world, logging put back after `configure_logging`, PTB's timedelta opt-in.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.e2e import support
from tests.e2e.discord_harness import World, build_world, fast_limits
from tests.e2e.support import API_KEY, make_settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.upstream import FakeUpstream

__all__ = ["API_KEY", "make_settings"]  # where older test files import them from; new ones use support


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    """The fake Discord at the adapter's tested pace; the test fails if the adapter went over its limits."""
    async with FakeDiscord(rate_limits=fast_limits()) as fake:
        yield fake
        assert fake.count_429 == 0, "the adapter went over Discord's rate limits"


@pytest.fixture
def world(dc: FakeDiscord) -> World:
    return build_world(dc)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    with support.restored_logging():
        yield


@pytest.fixture(autouse=True, scope="session")
def _ptb_timedelta() -> Iterator[None]:
    """PTB >= 22.2 warns when RetryAfter.retry_after is an int (warnings are errors here): use timedelta."""
    previous = os.environ.get("PTB_TIMEDELTA")
    os.environ["PTB_TIMEDELTA"] = "true"
    yield
    if previous is None:
        del os.environ["PTB_TIMEDELTA"]
    else:
        os.environ["PTB_TIMEDELTA"] = previous
