"""Shared e2e fixtures: a fake upstream and settings pointing the real core at it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from core import Settings
from tests.fakes.upstream import FakeUpstream

API_KEY = "sk-test-SECRET-d41d8cd98f00b204"


@pytest.fixture(autouse=True, scope="session")
def _ptb_timedelta() -> Iterator[None]:
    # PTB warns (an error here) when RetryAfter.retry_after is an int unless this opt-in is set.
    previous = os.environ.get("PTB_TIMEDELTA")
    os.environ["PTB_TIMEDELTA"] = "true"
    yield
    if previous is None:
        os.environ.pop("PTB_TIMEDELTA", None)
    else:
        os.environ["PTB_TIMEDELTA"] = previous


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(api_key=API_KEY) as fake:
        yield fake


def make_settings(upstream: FakeUpstream, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "llm_base_url": upstream.base_url,
        "llm_api_key": API_KEY,
        "chat_model": "fake/echo",
        "image_model": "fake/painter",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
        "stream_idle_timeout": 1.0,
        "llm_max_retries": 2,
        "image_dir": str(tmp_path / "images"),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)
