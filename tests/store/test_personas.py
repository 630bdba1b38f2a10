"""Personas (/system) in the store, on SQLite and PostgreSQL: keyed like a conversation, kept across /reset,
replaced in place, cleared back to a default, and deleted by their owner's /forget (a group's stays)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from core.conversation import ConversationKey, UserRef
from core.store import NewMessage, Store, upgrade
from core.store.db import create_engine
from core.store.personas import active_with_persona
from tests.e2e.database import rows

DM = ConversationKey("telegram", "42")
GROUP = ConversationKey("telegram", "-100", is_group=True)
ANN = UserRef("42", "Ann")
BOB = UserRef("43", "Bob")


async def _prompt(store: Store, key: ConversationKey, user: UserRef = ANN) -> tuple[str, bool]:
    record = await store.active_conversation(key, user, model="m1", system_prompt="default")
    return record.system_prompt, record.custom_prompt


async def test_a_persona_applies_to_the_active_conversation_and_survives_reset(store: Store) -> None:
    assert await _prompt(store, DM) == ("default", False)
    first = (await store.active_conversation(DM, ANN, model="m1", system_prompt="default")).id

    await store.set_persona(DM, ANN, "You are a pirate.", personal=True)
    assert await _prompt(store, DM) == ("You are a pirate.", True)

    assert await store.reset(DM)
    after = await store.active_conversation(DM, ANN, model="m1", system_prompt="default")
    assert after.id != first and (after.system_prompt, after.custom_prompt) == ("You are a pirate.", True)


async def test_a_persona_belongs_to_its_key_only(store: Store) -> None:
    await store.set_persona(DM, ANN, "pirate", personal=True)
    others = [
        ConversationKey("telegram", "42", thread_id="7"),
        ConversationKey("telegram", "42", scope="42"),
        ConversationKey("discord", "42"),
    ]
    assert [await _prompt(store, key) for key in others] == [("default", False)] * 3


async def test_setting_again_replaces_the_persona_in_place(store: Store, database_url: str) -> None:
    await store.set_persona(GROUP, ANN, "first", personal=False)
    await store.set_persona(GROUP, BOB, "second", personal=False)

    assert await _prompt(store, GROUP) == ("second", True)
    assert len(await rows(database_url, "personas")) == 1


async def test_clearing_returns_the_active_conversation_to_the_given_default(store: Store) -> None:
    await store.active_conversation(DM, ANN, model="m1", system_prompt="old default")
    await store.set_persona(DM, ANN, "pirate", personal=True)

    await store.clear_persona(DM, system_prompt="new default")

    assert await _prompt(store, DM) == ("new default", False)
    await store.clear_persona(DM, system_prompt="new default")  # nothing to clear: no error
    assert await store.reset(DM)
    assert await _prompt(store, DM) == ("default", False)  # a new conversation: the prompt it is made with


async def test_a_nul_in_the_prompt_is_stored_as_a_replacement_character(store: Store) -> None:
    await store.set_persona(DM, ANN, "be\x00kind", personal=True)  # PostgreSQL text cannot hold NUL

    assert await _prompt(store, DM) == ("be\ufffdkind", True)


async def test_forget_deletes_the_users_own_personas_and_keeps_a_groups(store: Store, database_url: str) -> None:
    own_group_scope = ConversationKey("telegram", "-100", scope="42", is_group=True)  # GROUP_HISTORY=user
    await store.set_persona(DM, ANN, "my DM persona", personal=True)
    await store.set_persona(own_group_scope, ANN, "my group persona", personal=True)
    await store.set_persona(GROUP, ANN, "the group's persona", personal=False)
    conversation = (await store.active_conversation(DM, ANN, model="m1", system_prompt="default")).id
    await store.add_message(conversation, NewMessage(role="user", text="hi", user=ANN))

    await store.forget(platform="telegram", user_id=ANN.id)

    assert len(await rows(database_url, "users")) == 0
    assert len(await rows(database_url, "personas")) == 1
    assert await _prompt(store, DM, BOB) == ("default", False)
    assert await _prompt(store, own_group_scope, BOB) == ("default", False)
    assert await _prompt(store, GROUP, BOB) == ("the group's persona", True)


async def test_on_sqlite_the_active_conversation_is_found_by_its_index_not_a_scan(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}"
    await upgrade(url)
    engine = create_engine(url)
    sql = str(active_with_persona(DM).compile(engine.sync_engine, compile_kwargs={"literal_binds": True}))
    try:
        async with engine.connect() as connection:
            plan = [row[-1] for row in (await connection.execute(text("EXPLAIN QUERY PLAN " + sql))).all()]
    finally:
        await engine.dispose()
    assert any("USING INDEX uq_conversations_active_key" in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan
