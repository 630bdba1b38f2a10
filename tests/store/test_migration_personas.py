"""Migration 0004 on a database with history, on SQLite and PostgreSQL: `personas` appears empty, every
conversation keeps its own prompt, /system works on the upgraded database, and a downgrade drops the table.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from core.conversation import ConversationKey, UserRef
from core.store import open_store, upgrade
from tests.store.migration_steps import migrate, run_sync

KEY = ConversationKey("t", "7")
ANN = UserRef("7", "Ann")


def _fill(connection: Connection) -> None:
    """Ann, her active conversation (prompt "be brief") and an old inactive one."""
    connection.execute(
        text(
            "INSERT INTO users (id, platform, platform_user_id, name, created_at)"
            " VALUES (1, 't', '7', 'Ann', CURRENT_TIMESTAMP)"
        )
    )
    for cid, active, prompt in ((1, True, "be brief"), (2, False, "older")):
        connection.execute(
            text(
                "INSERT INTO conversations (id, platform, chat_id, thread_id, scope, user_id, model, system_prompt,"
                " active, created_at, updated_at)"
                " VALUES (:id, 't', '7', '', '', 1, 'm', :p, :a, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"id": cid, "a": active, "p": prompt},
        )


def _state(connection: Connection) -> tuple[set[str], list[Any]]:
    prompts = connection.execute(text("SELECT id, system_prompt FROM conversations ORDER BY id")).all()
    return set(inspect(connection).get_table_names()), [tuple(row) for row in prompts]


async def test_upgrade_adds_personas_and_keeps_every_conversations_prompt(empty_database_url: str) -> None:
    url = empty_database_url
    await run_sync(url, migrate, url, "0003")
    await run_sync(url, _fill)

    await upgrade(url)

    tables, prompts = await run_sync(url, _state)
    assert "personas" in tables and prompts == [(1, "be brief"), (2, "older")]
    async with open_store(url) as store:
        record = await store.active_conversation(KEY, ANN, model="m", system_prompt="default")
        assert (record.id, record.system_prompt, record.custom_prompt) == (1, "be brief", False)
        await store.set_persona(KEY, ANN, "pirate", personal=True)
        assert (await store.active_conversation(KEY, ANN, model="m", system_prompt="default")).system_prompt == "pirate"

    await run_sync(url, migrate, url, "0003", True)

    tables, prompts = await run_sync(url, _state)
    assert "personas" not in tables and prompts == [(1, "be brief"), (2, "older")]
