"""A tool exchange in the store (SQLite and PostgreSQL): stored with its answer, read back in order."""

from __future__ import annotations

from core.conversation import ConversationKey, UserRef
from core.events import ToolCall, Usage
from core.store import NewMessage, Store

KEY = ConversationKey("discord", "9")
ANN = UserRef("42", "Ann")


async def test_calls_and_results_are_stored_with_the_answer_and_read_back_in_order(store: Store) -> None:
    conversation = (await store.active_conversation(KEY, ANN, model="m", system_prompt="")).id
    asked = await store.add_message(conversation, NewMessage(role="user", text="where is A-17?", user=ANN))
    call = ToolCall("call_1", "lookup_order", '{"id": "A-17"}')
    stored = await store.add_reply(
        conversation,
        NewMessage(role="assistant", text="It has shipped.", user=ANN, model="m", usage=Usage(10, 2, 12)),
        answering=asked,
        before=[
            NewMessage(role="assistant", text="", user=ANN, tool_calls=(call,), model="m"),
            NewMessage(role="tool", text="shipped\x00", user=ANN, tool_calls=(ToolCall("call_1", "lookup_order", ""),)),
        ],
    )
    history = await store.recent_messages(conversation, limit=10)

    assert stored is not None
    assert [(m.role, m.text) for m in history] == [
        ("user", "where is A-17?"),
        ("assistant", ""),
        ("tool", "shipped\ufffd"),
        ("assistant", "It has shipped."),
    ]
    assert history[1].tool_calls == (call,) and history[2].tool_calls[0].id == "call_1"
    assert history[3].tool_calls == () and (await store.conversation_usage(conversation)).total_tokens == 12


async def test_nothing_of_the_exchange_is_stored_when_forget_removed_the_question(store: Store) -> None:
    conversation = (await store.active_conversation(KEY, ANN, model="m", system_prompt="")).id
    asked = await store.add_message(conversation, NewMessage(role="user", text="q", user=ANN))
    await store.forget(platform="discord", user_id="42")
    stored = await store.add_reply(
        conversation,
        NewMessage(role="assistant", text="a", user=ANN),
        answering=asked,
        before=[NewMessage(role="tool", text="r", user=ANN, tool_calls=(ToolCall("c", "t", ""),))],
    )
    assert stored is None and await store.recent_messages(conversation, limit=10) == []


async def test_an_answer_that_failed_after_its_tools_ran_is_stored_after_the_whole_exchange(store: Store) -> None:
    conversation = (await store.active_conversation(KEY, ANN, model="m", system_prompt="")).id
    asked = await store.add_message(conversation, NewMessage(role="user", text="draw", user=ANN))
    call = ToolCall("call_1", "generate_image", '{"prompt": "a cat"}')
    await store.add_reply(
        conversation,
        NewMessage(role="assistant", text="", user=ANN, model="m", incomplete=True, usage=Usage(30, 5, 35)),
        answering=asked,
        before=[
            NewMessage(role="assistant", text="On it.", user=ANN, tool_calls=(call,), model="m"),
            NewMessage(role="tool", text="Done.", user=ANN, tool_calls=(ToolCall("call_1", "generate_image", ""),)),
        ],
    )
    history = await store.recent_messages(conversation, limit=10)

    assert [(m.role, m.text, m.incomplete) for m in history] == [
        ("user", "draw", False),
        ("assistant", "On it.", False),
        ("tool", "Done.", False),
        ("assistant", "", True),
    ]
    assert (await store.conversation_usage(conversation)).total_tokens == 35  # the rounds that ran are charged
