"""Locks that hold across processes: PostgreSQL session-level advisory locks, each on its own connection.

On SQLite (one process by design) both locks are in-process only. Imports only core.errors from core.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial
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
# Many keys in one statement; WITH ORDINALITY tells which answer is whose (a key may come twice).
BATCH_TRY_LOCK = "SELECT n, pg_try_advisory_lock(k) FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS t(k, n)"
BATCH_UNLOCK = "SELECT n, pg_advisory_unlock(k) FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS t(k, n)"


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
    for minutes. Every conversation lock of this process lives in one shared session; a lock another
    process holds is polled with `pg_try_advisory_lock`. The session runs one statement at a time, so the
    requests that wait meanwhile go together in the next one (all unlocks, then all locks: one round trip
    each, whatever their number). One statement per request could not keep up with a busy process: each
    took a round trip plus loop turns, and at 12 replies a second under load the queue before the lock grew
    to seconds. If the session fails, it is closed (the server then frees all its locks: replies in flight
    go on, ordering across processes is briefly not enforced) and the next lock opens a new one. Behind
    PgBouncer, use session pooling.
    """

    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine
        self._shared: AsyncConnection | None = None
        self._waiting: list[tuple[bool, int, asyncio.Future[bool]]] = []  # (lock, not unlock; key; answer)
        self._runner: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def hold(self, key: int) -> AsyncIterator[None]:
        """Wait for the lock (polling while another process holds it) and hold it for the block."""
        if self._engine is None:
            yield
            return
        delay = LOCK_POLL_FIRST_SECONDS
        while not await self._lock(key):
            await asyncio.sleep(delay)
            delay = min(delay * 2, LOCK_POLL_MAX_SECONDS)
        session = self._shared
        try:
            yield
        finally:
            if session is not None and session is self._shared:  # else that session, and the lock, are gone
                await asyncio.shield(self._submit(False, key))  # runs to its end even if we are cancelled

    async def aclose(self) -> None:
        if self._runner is not None and not self._runner.done():
            with suppress(Exception):
                await asyncio.shield(self._runner)
        if self._shared is not None:
            shared, self._shared = self._shared, None
            with suppress(SQLAlchemyError, OSError):
                await shared.close()

    async def _lock(self, key: int) -> bool:
        """One try; a lock granted after our caller was cancelled is given back."""
        answer = self._submit(True, key)
        try:
            return await asyncio.shield(answer)
        except asyncio.CancelledError:
            answer.add_done_callback(partial(self._give_back, key))
            raise

    def _give_back(self, key: int, answer: asyncio.Future[bool]) -> None:
        if not answer.cancelled() and answer.exception() is None and answer.result():
            self._submit(False, key)

    def _submit(self, lock: bool, key: int) -> asyncio.Future[bool]:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((lock, key, answer))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return answer

    async def _run(self) -> None:
        """Run the waiting requests, a batch per statement, until none is left."""
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results = await self._execute(batch)
            except BaseException as exc:  # cancelled at shutdown too: no request is left waiting
                failure = exc if isinstance(exc, StoreError) else StoreError("lock session stopped")
                for lock, _, answer in batch:
                    if answer.done():
                        continue
                    if lock:
                        answer.set_exception(failure)
                    else:
                        answer.set_result(False)  # the session is gone, and with it the lock
                if not isinstance(exc, StoreError):
                    raise
                continue
            for (_, _, answer), result in zip(batch, results, strict=True):
                if not answer.done():
                    answer.set_result(result)

    async def _execute(self, batch: list[tuple[bool, int, asyncio.Future[bool]]]) -> list[bool]:
        """Unlocks first (a lock given back may be wanted again by the next turn), then locks."""
        if self._shared is None:
            self._shared = await self._connect()
        connection = self._shared
        results: list[bool] = [False] * len(batch)
        try:
            for lock, sql in ((False, BATCH_UNLOCK), (True, BATCH_TRY_LOCK)):
                places = [n for n, (is_lock, _, _) in enumerate(batch) if is_lock is lock]
                if not places:
                    continue
                rows = await connection.execute(text(sql), {"keys": [batch[n][1] for n in places]})
                for ordinal, done in rows:
                    results[places[ordinal - 1]] = bool(done)
        except BaseException as exc:  # failed or cancelled mid-statement: what the session holds is unknown
            self._shared = None
            await _discard(connection)  # the server drops every lock the session held
            if isinstance(exc, SQLAlchemyError | OSError):
                raise StoreError(f"database error ({type(exc).__name__})") from exc
            raise
        return results

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
