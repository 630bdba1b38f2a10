"""Alembic driven from code: `upgrade(database_url)` brings a database to the newest schema.

There is no alembic.ini: the config is built here and the scripts are found in the `migrations` package.
Safe to await inside a running event loop, and from several processes at once.
"""

from __future__ import annotations

import asyncio
import threading
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from core.errors import StoreError
from core.store.db import create_engine

# Alembic's `context` and `op` are process-wide proxies, so one process runs one migration at a time.
_MIGRATING_IN_THIS_PROCESS = threading.Lock()
# PostgreSQL advisory lock taken for the migration's transaction: other processes wait, then find head.
PG_MIGRATION_LOCK_KEY = 0x7061726C6579  # "parley"


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at the packaged scripts; env.py reads the URL from `attributes`."""
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    config.set_main_option("path_separator", "os")  # the explicit choice Alembic >= 1.16 asks for
    # In attributes, not main options: a URL-encoded password's "%" would trip ConfigParser interpolation.
    config.attributes["database_url"] = database_url
    return config


def _upgrade_on(connection: Connection, config: Config, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
    else:
        # Take SQLite's write lock up front (waiting up to busy_timeout): DDL then runs in this one
        # transaction, so a second process waits and finds head instead of racing CREATE TABLE.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def _upgrade(database_url: str, revision: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_on, alembic_config(database_url), revision)
    finally:
        await engine.dispose()


def _upgrade_in_thread(database_url: str, revision: str) -> None:
    with _MIGRATING_IN_THIS_PROCESS:
        asyncio.run(_upgrade(database_url, revision))


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply every migration up to `revision`; a no-op on an up-to-date database.

    Creates a SQLite file (and its folder) if missing. Runs in a worker thread with its own event loop,
    keeping Alembic's blocking script loading off the caller's loop. Failures raise `StoreError`.
    """
    try:
        await asyncio.to_thread(_upgrade_in_thread, database_url, revision)
    except (SQLAlchemyError, OSError, CommandError) as exc:
        raise StoreError(f"migration failed ({type(exc).__name__})") from exc
