"""Store fixtures: every test runs on a fresh SQLite file and on a fresh PostgreSQL database.

PostgreSQL comes from PARLEY_TEST_PG_URL (default: trust auth on 127.0.0.1:5432). Unreachable means skip,
or fail when REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from core.store import Store, open_store, upgrade
from tests.fakes.clock import FakeWallClock, utc
from tests.postgres import connect_admin, temporary_database

PG_ADMIN_URL = os.environ.get("PARLEY_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty, uniquely named database; dropped (even if still connected to) on exit."""
    try:
        admin = await connect_admin(PG_ADMIN_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        admin_url = make_url(PG_ADMIN_URL)
        reason = f"PostgreSQL unreachable at {admin_url.host}:{admin_url.port} ({type(exc).__name__})"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    async with temporary_database(admin, PG_ADMIN_URL, prefix="parley_test_") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database, not migrated."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def database_url(empty_database_url: str) -> str:
    """The URL of a database migrated to head."""
    await upgrade(empty_database_url)
    return empty_database_url


@pytest.fixture
async def postgres_database_url() -> AsyncIterator[str]:
    """A migrated PostgreSQL database, for the tests that are about PostgreSQL itself."""
    async with fresh_postgres_database() as url:
        await upgrade(url)
        yield url


@pytest.fixture
def clock() -> FakeWallClock:
    """The store's wall clock: noon UTC on a fixed day until a test moves it."""
    return FakeWallClock(utc(2026, 11, 23, 12, 0, 0))


@pytest.fixture
async def store(database_url: str, clock: FakeWallClock) -> AsyncIterator[Store]:
    async with open_store(database_url, clock=clock) as opened:
        yield opened
