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

# Each reply in flight holds one idle lock connection, so the lock pool is separate from the store's (a
# burst of long streams never starves the short store transactions) and larger; past its size, turns wait
# for a connection up to PG_LOCK_POOL_TIMEOUT_SECONDS.
PG_LOCK_POOL_SIZE = 5
PG_LOCK_MAX_OVERFLOW = 45
PG_LOCK_POOL_TIMEOUT_SECONDS = 300
PG_CONNECT_TIMEOUT_SECONDS = 10


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

    Session-level, not `pg_advisory_xact_lock`: the holding connection sits idle *outside* a transaction
    for the whole reply, so `idle_in_transaction_session_timeout` never kills it and no transaction stays
    open for minutes. The cost is an explicit unlock: if it fails, or the holder is cancelled at a bad
    moment, the connection is invalidated (closed), which frees the lock on the server. Both kinds need a
    real session: behind PgBouncer, use session pooling for Parley.
    """

    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine

    @asynccontextmanager
    async def hold(self, key: int) -> AsyncIterator[None]:
        """Wait for the lock (FIFO among waiters, as PostgreSQL grants them), hold it for the block."""
        if self._engine is None:
            yield
            return
        connection = await self._connect()
        try:
            await _execute(connection, "SELECT pg_advisory_lock(:key)", key)
            try:
                yield
            finally:
                await _unlock(connection, key)
        finally:
            await connection.close()

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
    try:
        yield AdvisoryLocks(engine)
    finally:
        await engine.dispose()
