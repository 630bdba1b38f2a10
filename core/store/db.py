"""The async engine (SQLite with WAL, or PostgreSQL through asyncpg) and statements shared by history.py
and usage.py. Imports only core.errors, core.conversation and the tables from the rest of core.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from core.conversation import UserRef
from core.errors import StoreError
from core.store.tables import User

SQLITE_BUSY_TIMEOUT_MS = 5000
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 10
PG_POOL_RECYCLE_SECONDS = 1800  # below common idle-connection cut-offs of proxies and managed servers
PG_CONNECT_TIMEOUT_SECONDS = 10

Dialect = Literal["sqlite", "postgresql"]


def prepare_sqlite_folder(database_url: str) -> None:
    """Create the parent folder of a SQLite database file; do nothing for other URLs or :memory:."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work while one writer commits; synchronous=NORMAL is safe with WAL (no corruption,
    # at worst the last commits lost on power failure) and saves an fsync per commit (SQLite docs "WAL").
    # busy_timeout first: the journal_mode pragma itself needs a lock, and without a timeout a connection
    # opened while another one writes (a second process migrating, a pooled connection mid-commit) fails at
    # once with "database is locked" instead of waiting.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def create_engine(database_url: str) -> AsyncEngine:
    """An engine for a `sqlite+aiosqlite://` or `postgresql+asyncpg://` URL (as `DatabaseSettings` gives).

    The caller disposes it. For SQLite the file's folder is created if missing. `hide_parameters` keeps
    users' messages out of error messages and logs (the SQL is shown, never the values).
    """
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        prepare_sqlite_folder(database_url)
        engine = create_async_engine(url, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        return engine
    if backend == "postgresql":
        return create_async_engine(
            url,
            hide_parameters=True,
            pool_size=PG_POOL_SIZE,
            max_overflow=PG_MAX_OVERFLOW,
            pool_recycle=PG_POOL_RECYCLE_SECONDS,
            # No pool_pre_ping: with asyncpg it costs three round trips per checkout (BEGIN, ping,
            # ROLLBACK), half the store's time per turn. After a server restart the first statement on a dead
            # connection fails (one StoreError) and SQLAlchemy then replaces the whole pool.
            connect_args={
                "timeout": PG_CONNECT_TIMEOUT_SECONDS,
                "server_settings": {"application_name": "parley"},
            },
        )
    raise StoreError(f"unsupported database backend {backend!r}")


@dataclass(frozen=True, slots=True)
class Database:
    """An engine, the same engine for single-statement reads, and the dialect name.

    The store runs Core statements on `engine.begin()` connections rather than ORM sessions: nothing
    needs an identity map, and the session layer alone cost ~1 ms of the 5 ms budget of a turn.
    `reader` skips BEGIN and COMMIT on PostgreSQL (autocommit, two round trips saved); on SQLite switching
    modes costs more than it saves, so there it is `engine`.
    """

    engine: AsyncEngine
    reader: AsyncEngine
    dialect: Dialect


@asynccontextmanager
async def open_database(database_url: str) -> AsyncIterator[Database]:
    """Create the engine; dispose it (closing every pooled connection) on exit."""
    engine = create_engine(database_url)
    try:
        if engine.dialect.name == "sqlite":
            yield Database(engine, engine, "sqlite")
        else:
            yield Database(engine, engine.execution_options(isolation_level="AUTOCOMMIT"), "postgresql")
    finally:
        await engine.dispose()


def dialect_insert(dialect: Dialect, table: Any) -> sqlite.Insert | postgresql.Insert:
    """An INSERT with the dialect's ON CONFLICT clauses (both dialects spell them alike)."""
    return sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)


async def ensure_user(connection: AsyncConnection, dialect: Dialect, platform: str, user: UserRef) -> int:
    """The id of the user's row, creating it or updating its name when needed.

    A SELECT first, so that a known user with an unchanged name costs no write. An empty name never
    replaces a known one.
    """
    name = user.name.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL
    row = (
        await connection.execute(
            select(User.id, User.name).where(User.platform == platform, User.platform_user_id == user.id)
        )
    ).first()
    if row is not None and (row.name == name or not name):
        return int(row.id)
    stmt = dialect_insert(dialect, User).values(platform=platform, platform_user_id=user.id, name=name)
    stmt = stmt.on_conflict_do_update(
        index_elements=[User.platform, User.platform_user_id],
        set_={"name": func.coalesce(func.nullif(stmt.excluded.name, ""), User.name)},
    )
    return int((await connection.execute(stmt.returning(User.id))).scalar_one())
