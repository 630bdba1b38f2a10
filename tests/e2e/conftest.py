"""Shared set-up of the end-to-end tests: the fake upstream, settings for it, PTB's timedelta opt-in."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from core import Settings
from tests.fakes.upstream import FakeUpstream

API_KEY = "sk-test-SECRET-key-0123456789abcdef"


def make_settings(upstream: FakeUpstream, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for the real assistant against `upstream`, with a SQLite file under `tmp_path`."""
    values: dict[str, Any] = {
        "llm_base_url": upstream.base_url,
        "llm_api_key": API_KEY,
        "chat_model": "fake/echo",
        "image_model": "fake/painter",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
        "llm_max_retries": 0,
        "stream_idle_timeout": 2.0,
    }
    return Settings(_env_file=None, **(values | overrides))


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(api_key=API_KEY) as fake:
        yield fake


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
