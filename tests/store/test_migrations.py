"""Migrations: the first revision builds exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sys
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from core.conversation import ConversationKey
from core.store import StoreError, open_store, upgrade
from core.store.migrate import alembic_config
from core.store.tables import Base
from tests.store.migration_steps import run_sync

REPO_ROOT = Path(__file__).resolve().parents[2]


def _diffs(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
    return list(compare_metadata(context, Base.metadata))


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    assert await run_sync(database_url, _diffs) == []


async def test_upgrade_reaches_head_and_is_idempotent(database_url: str) -> None:
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert head is not None
    assert await run_sync(database_url, _revision) == head

    await upgrade(database_url)  # second run: nothing to do, nothing broken

    assert await run_sync(database_url, _revision) == head
    assert await run_sync(database_url, _diffs) == []


async def test_processes_upgrading_at_once_all_succeed(empty_database_url: str) -> None:
    # Separate processes, as two bots starting together would be (in one process upgrades queue anyway).
    # Each imports, says "ready", and waits for "go", so that the migrations really overlap.
    code = (
        "import asyncio, sys; from core.store import upgrade; print('ready', flush=True); "
        "sys.stdin.readline(); asyncio.run(upgrade(sys.argv[1]))"
    )
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            empty_database_url,
            cwd=REPO_ROOT,
            stdin=PIPE,
            stdout=PIPE,
            stderr=PIPE,
        )
        for _ in range(3)
    ]
    async with asyncio.timeout(60):
        for process in processes:
            assert process.stdout is not None
            assert await process.stdout.readline() == b"ready\n"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
        results = [await process.communicate() for process in processes]

    assert [process.returncode for process in processes] == [0, 0, 0], [err.decode()[-300:] for _, err in results]
    assert await run_sync(empty_database_url, _diffs) == []


async def test_downgrade_to_base_then_upgrade_again(database_url: str) -> None:
    def downgrade(connection: Connection, config: Config) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    await run_sync(database_url, downgrade, alembic_config(database_url))
    assert await run_sync(database_url, _tables) == {"alembic_version"}

    await upgrade(database_url)
    assert {"users", "conversations", "messages", "usage_records"} <= await run_sync(database_url, _tables)


async def test_upgrade_creates_the_sqlite_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "parley.db"
    url = f"sqlite+aiosqlite:///{path}"

    await upgrade(url)

    assert path.is_file()
    async with open_store(url) as store:  # usable straight away
        assert await store.reset(ConversationKey("telegram", "1")) is False
    mode = await run_sync(url, lambda c: c.execute(text("PRAGMA journal_mode")).scalar())
    assert mode == "wal"


async def test_unreachable_database_fails_upgrade_with_store_error() -> None:
    with pytest.raises(StoreError) as caught:
        await upgrade("postgresql+asyncpg://nobody:hunter2@127.0.0.1:1/none")
    assert "hunter2" not in str(caught.value)
