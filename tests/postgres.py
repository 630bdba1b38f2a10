"""Throw-away PostgreSQL databases, for the store tests (tests/store/conftest.py) and the benches (bench/).

No pytest here: the caller decides what an unreachable server means (skip, fail, or an error for a bench).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

CONNECT_TIMEOUT_SECONDS = 5.0


async def connect_admin(admin_url: str | URL) -> Any:
    """An asyncpg connection to the server's maintenance database (`postgres` unless the URL names one)."""
    url = make_url(admin_url)
    return await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password,
        database=url.database or "postgres", timeout=CONNECT_TIMEOUT_SECONDS,
    )  # fmt: skip


@asynccontextmanager
async def temporary_database(admin: Any, admin_url: str | URL, prefix: str) -> AsyncIterator[str]:
    """A new, empty, uniquely named database (its URL), made through `admin`; dropped on exit even if still
    connected to, and `admin` closed."""
    name = f"{prefix}{uuid.uuid4().hex[:16]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
