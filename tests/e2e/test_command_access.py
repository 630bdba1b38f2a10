"""Every conversation command of the real Assistant checks access itself, present ones and any added later.

The adapters lean on this: a method that takes a conversation and forgets the check would let strangers in
on every platform at once. Found by looking at `Assistant`, so a new method is covered without editing
this file, unless it takes an argument this file cannot guess (then the test says which).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from core import AccessDeniedError, Assistant, ConversationKey, Turn, UserRef, open_assistant
from tests.e2e.support import make_settings
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

ANN, EVE = UserRef("7", "Ann"), UserRef("66", "Eve")
GROUP = ConversationKey("telegram", "-100", is_group=True)
# `access` answers the question the others ask; it refuses nobody by design.
NOT_COMMANDS = frozenset({"access"})


def arguments_for(method: Any) -> dict[str, Any]:
    """Plausible arguments for a conversation command, by parameter name, with the stranger as caller."""
    known: dict[str, Any] = {
        "conversation": GROUP,
        "user": EVE,
        "model": "fake/other",
        "prompt": "a cat",
        "turn": Turn(conversation=GROUP, user=EVE, text="hello"),
    }
    found: dict[str, Any] = {}
    for name, parameter in inspect.signature(method).parameters.items():
        if name in known:
            found[name] = known[name]
        elif parameter.default is inspect.Parameter.empty:
            raise AssertionError(f"{method.__name__}: add a value for its parameter {name!r} to this test")
    return found


def conversation_commands() -> list[str]:
    return sorted(
        name
        for name, member in inspect.getmembers(Assistant, inspect.isfunction)
        if not name.startswith("_")
        and name not in NOT_COMMANDS
        and ({"conversation", "turn"} & set(inspect.signature(member).parameters))
    )


def test_the_commands_found_include_every_one_users_can_run() -> None:
    assert {"reply", "imagine", "reset", "set_model", "current_model", "usage", "require_access"} <= set(
        conversation_commands()
    )


@pytest.mark.parametrize("name", conversation_commands())
async def test_a_stranger_is_refused_by_every_conversation_command(
    name: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    config = make_settings(upstream, tmp_path, allowed_users=f"telegram:{ANN.id}")
    async with open_assistant(config) as assistant:
        method = getattr(assistant, name)
        with pytest.raises(AccessDeniedError):
            outcome = method(**arguments_for(method))
            if inspect.isasyncgen(outcome):
                async for _ in outcome:
                    pass
            else:
                await outcome
    assert upstream.requests == []  # not even the model list was asked for
