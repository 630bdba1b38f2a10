"""Locks that hold across processes: PostgreSQL session-level advisory locks, each on its own connection.

On SQLite (one process by design) both locks are in-process only. Imports only core.errors from core.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from core.errors import StoreError

log = logging.getLogger(__name__)

# Conversation locks of one process all live in ONE session (a session may hold any number of advisory
# locks), so hundreds of replies in flight cost one connection, not one each; leadership takes its own.
PG_LOCK_POOL_SIZE = 2
PG_LOCK_MAX_OVERFLOW = 2
PG_LOCK_POOL_TIMEOUT_SECONDS = 30
PG_CONNECT_TIMEOUT_SECONDS = 10
# A lock held by another process is polled with pg_try_advisory_lock (a blocking pg_advisory_lock would stall
# the shared session): first after 20 ms, doubling up to 250 ms.
LOCK_POLL_FIRST_SECONDS = 0.02
LOCK_POLL_MAX_SECONDS = 0.25


def lock_id(namespace: str, *parts: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock (the same in every process and Python version)."""
    joined = "\x1f".join((namespace, *parts)).encode()
    return int.from_bytes(hashlib.blake2b(joined, digest_size=8).digest(), "big", signed=True)


class Lease:
    """Held leadership: `await lease.lost()` returns when the lock's connection fails (another may lead)."""

    def __init__(self, connection: AsyncConnection | None, check_seconds: float) -> None:
        self._connection = connection
        self._check_seconds = check_seconds

    async def lost(self) -> None:
        if self._connection is None:  # in-process only: never lost
            await asyncio.Event().wait()
            return
        while True:
            await asyncio.sleep(self._check_seconds)
            try:
                await self._connection.execute(text("SELECT 1"))
            except (SQLAlchemyError, OSError):
                log.warning("leadership lock connection lost")
                return


class AdvisoryLocks:
    """Session-level advisory locks on PostgreSQL; nothing (the caller's in-process lock suffices) otherwise.

    Session-level, not `pg_advisory_xact_lock`: the holding session sits idle *outside* a transaction for
    the whole reply, so `idle_in_transaction_session_timeout` never kills it and no transaction stays open
    for minutes. Every conversation lock of this process lives in one shared session, one statement at a
    time; a lock another process holds is polled with `pg_try_advisory_lock`. If that session fails, it is
    closed (the server then frees all its locks: replies in flight go on, ordering across processes is
    briefly not enforced) and the next lock opens a new one. Behind PgBouncer, use session pooling.
    """

    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine
        self._shared: AsyncConnection | None = None
        self._statements = asyncio.Lock()  # a connection runs one statement at a time

    @asynccontextmanager
    async def hold(self, key: int) -> AsyncIterator[None]:
        """Wait for the lock (polling while another process holds it) and hold it for the block."""
        if self._engine is None:
            yield
            return
        delay = LOCK_POLL_FIRST_SECONDS
        while not await self._shielded("SELECT pg_try_advisory_lock(:key)", key, undo_if_true=True):
            await asyncio.sleep(delay)
            delay = min(delay * 2, LOCK_POLL_MAX_SECONDS)
        session = self._shared
        try:
            yield
        finally:
            if session is not None and session is self._shared:  # else that session, and the lock, are gone
                with suppress(StoreError):
                    await self._shielded("SELECT pg_advisory_unlock(:key)", key)

    async def aclose(self) -> None:
        async with self._statements:
            if self._shared is not None:
                shared, self._shared = self._shared, None
                with suppress(SQLAlchemyError, OSError):
                    await shared.close()

    async def _shielded(self, sql: str, key: int, *, undo_if_true: bool = False) -> bool:
        """Run one lock statement to its end even if our caller is cancelled (a granted lock is undone)."""
        task = asyncio.ensure_future(self._on_shared(sql, key))
        try:
            return bool(await asyncio.shield(task))
        except asyncio.CancelledError:
            with suppress(Exception):
                if await task and undo_if_true:
                    await self._on_shared("SELECT pg_advisory_unlock(:key)", key)
            raise

    async def _on_shared(self, sql: str, key: int) -> Any:
        async with self._statements:
            if self._shared is None:
                self._shared = await self._connect()
            connection = self._shared
            try:
                return (await connection.execute(text(sql), {"key": key})).scalar_one()
            except (SQLAlchemyError, OSError) as exc:
                self._shared = None
                await _discard(connection)  # the server drops every lock the session held
                raise StoreError(f"database error ({type(exc).__name__})") from exc

    @asynccontextmanager
    async def leadership(self, key: int, *, retry_seconds: float) -> AsyncIterator[Lease]:
        """Try the lock every `retry_seconds` until this process has it; hold it for the block."""
        if self._engine is None:
            yield Lease(None, retry_seconds)
            return
        while True:
            try:
                connection = await self._connect()
            except StoreError as exc:  # a waiter outlives database blips: it just tries again later
                log.warning("leadership: %s; retrying", exc)
                await asyncio.sleep(retry_seconds)
                continue
            try:
                try:
                    got = await _execute(connection, "SELECT pg_try_advisory_lock(:key)", key)
                except StoreError as exc:
                    log.warning("leadership: %s; retrying", exc)
                    got = False
                if got:
                    try:
                        yield Lease(connection, retry_seconds)
                    finally:
                        await _unlock(connection, key)
                    return
            finally:
                await connection.close()
            await asyncio.sleep(retry_seconds)

    async def _connect(self) -> AsyncConnection:
        assert self._engine is not None
        try:
            return await self._engine.connect()
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"database error ({type(exc).__name__})") from exc


async def _execute(connection: AsyncConnection, sql: str, key: int) -> Any:
    """One lock statement; on any failure or cancellation the connection is closed for good."""
    try:
        return (await connection.execute(text(sql), {"key": key})).scalar_one()
    except BaseException as exc:
        await _discard(connection)
        if isinstance(exc, (SQLAlchemyError, OSError)):
            raise StoreError(f"database error ({type(exc).__name__})") from exc
        raise


async def _unlock(connection: AsyncConnection, key: int) -> None:
    try:
        released = await _execute(connection, "SELECT pg_advisory_unlock(:key)", key)
    except StoreError:
        return  # the connection is gone, and with its session the lock
    if not released:
        await _discard(connection)  # the session was replaced under us: make sure nothing stays held


async def _discard(connection: AsyncConnection) -> None:
    """Close the connection for good: the server then drops every advisory lock it held."""
    with suppress(SQLAlchemyError, OSError):
        await asyncio.shield(connection.invalidate())


@asynccontextmanager
async def open_advisory_locks(database_url: str) -> AsyncIterator[AdvisoryLocks]:
    """Advisory locks for `database_url`: a dedicated autocommit pool on PostgreSQL, disposed on exit."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        yield AdvisoryLocks(None)
        return
    connect_args: dict[str, Any] = {
        "timeout": PG_CONNECT_TIMEOUT_SECONDS,
        "server_settings": {"application_name": "parley-locks"},
    }
    engine = create_async_engine(
        url,
        hide_parameters=True,
        isolation_level="AUTOCOMMIT",
        pool_size=PG_LOCK_POOL_SIZE,
        max_overflow=PG_LOCK_MAX_OVERFLOW,
        pool_timeout=PG_LOCK_POOL_TIMEOUT_SECONDS,
        connect_args=connect_args,
    )
    locks = AdvisoryLocks(engine)
    try:
        yield locks
    finally:
        await locks.aclose()
        await engine.dispose()
