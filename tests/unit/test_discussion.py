"""Overheard group lines: bounded per chat and in the number of chats; taken once."""

from __future__ import annotations

from core.discussion import Discussion


def test_keeps_the_last_n_lines_and_forgets_them_once_taken() -> None:
    memory = Discussion(3)
    for i in range(5):
        memory.add("chat", "ann", f"line {i}")
    assert memory.take("chat") == ("ann: line 2", "ann: line 3", "ann: line 4")
    assert memory.take("chat") == ()


def test_disabled_keeps_nothing() -> None:
    memory = Discussion(0)
    memory.add("chat", "ann", "hello")
    assert not memory.enabled and memory.take("chat") == () and len(memory) == 0


def test_number_of_chats_is_bounded_least_recent_first() -> None:
    memory = Discussion(2, max_chats=100, max_line_chars=10)
    for chat in range(1000):
        memory.add(chat, "bob", "x" * 50)
    assert len(memory) == 100
    assert memory.take(0) == ()
    assert memory.take(999) == ("bob: " + "x" * 10 + "…",)
