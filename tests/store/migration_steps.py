"""Steps of the migration tests: run a function on a connection of a database, move it to a revision."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from core.store.migrate import alembic_config


async def run_sync(url: str, fn: Any, *args: Any) -> Any:
    """`fn(connection, *args)` in one transaction on the database at `url`; its result."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(fn, *args)
    finally:
        await engine.dispose()


def migrate(connection: Connection, url: str, revision: str, down: bool = False) -> None:
    """Upgrade (or with `down`, downgrade) the database to `revision`; for `run_sync`."""
    config = alembic_config(url)
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)
