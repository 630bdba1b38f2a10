"""The context sent upstream: budget, newest first, old images as placeholders, group prefixes."""

from __future__ import annotations

from core.context import OLD_IMAGE_PLACEHOLDER, HistoryItem, build_context, estimate_tokens

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


def turns(n: int, size: int = 40) -> list[HistoryItem]:
    items = []
    for i in range(n):
        items.append(HistoryItem("user", f"question {i} " + "q" * size, author="ann"))
        items.append(HistoryItem("assistant", f"answer {i} " + "a" * size))
    items.append(HistoryItem("user", "the new question", author="ann"))
    return items


def test_everything_fits_in_order() -> None:
    messages = build_context(system_prompt="be kind", history=turns(3), budget_tokens=10_000, image_turns=2)
    assert messages[0] == {"role": "system", "content": "be kind"}
    assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * 3 + ["user"]
    assert messages[-1]["content"] == "the new question"


def test_budget_keeps_newest_and_always_the_question() -> None:
    history = turns(50, size=400)
    messages = build_context(system_prompt="sys", history=history, budget_tokens=1000, image_turns=2)
    assert messages[0]["role"] == "system" and messages[-1]["content"] == "the new question"
    kept = messages[1:-1]
    assert kept and len(kept) < 10
    assert kept[-1]["content"].startswith("answer 49")  # the newest earlier messages survive
    assert sum(estimate_tokens(str(m["content"])) for m in messages) <= 1000
    # A question larger than the whole budget still goes, alone with the system prompt.
    huge = [*history[:-1], HistoryItem("user", "x" * 40_000)]
    assert len(build_context(system_prompt="sys", history=huge, budget_tokens=1000, image_turns=2)) == 2


def test_old_images_become_placeholders() -> None:
    history = []
    for i in range(4):
        history.append(HistoryItem("user", f"photo {i}", parts=[{"type": "text", "text": f"photo {i}"}, IMAGE]))
        history.append(HistoryItem("assistant", f"nice {i}"))
    history.append(HistoryItem("user", "and this", parts=[{"type": "text", "text": "and this"}, IMAGE]))
    messages = build_context(system_prompt="", history=history, budget_tokens=100_000, image_turns=2)
    users = [m for m in messages if m["role"] == "user"]
    assert isinstance(users[-1]["content"], list) and users[-1]["content"][1] == IMAGE
    assert isinstance(users[-2]["content"], list)  # within the last two user turns
    assert users[0]["content"] == f"photo 0\n{OLD_IMAGE_PLACEHOLDER}"
    assert users[1]["content"] == f"photo 1\n{OLD_IMAGE_PLACEHOLDER}"


def test_newest_image_is_sent_even_with_zero_image_turns() -> None:
    history = [HistoryItem("user", "", parts=[IMAGE])]
    messages = build_context(system_prompt="", history=history, budget_tokens=100, image_turns=0)
    assert messages == [{"role": "user", "content": [IMAGE]}]


def test_group_names_and_discussion() -> None:
    history = [
        HistoryItem("user", "hi", author="ann"),
        HistoryItem("assistant", "hello"),
        HistoryItem("user", "what now?", author="bob"),
    ]
    messages = build_context(
        system_prompt="s",
        history=history,
        budget_tokens=1000,
        image_turns=1,
        name_prefix=True,
        discussion=["carl: pizza tonight?", "dana: yes"],
    )
    assert messages[1]["content"] == "ann: hi" and messages[2]["content"] == "hello"
    assert messages[-2]["role"] == "system" and "carl: pizza tonight?\ndana: yes" in messages[-2]["content"]
    assert messages[-1]["content"] == "bob: what now?"


def _exchange() -> list[HistoryItem]:
    from core.events import ToolCall

    calls = (ToolCall("c1", "lookup", '{"id": 1}'), ToolCall("c2", "lookup", '{"id": 2}'))
    return [
        HistoryItem("user", "old question " + "x" * 400),
        HistoryItem("assistant", "checking", tool_calls=calls),
        HistoryItem("tool", "result one " + "y" * 400, tool_calls=(ToolCall("c1", "lookup", ""),)),
        HistoryItem("tool", "result two", tool_calls=(ToolCall("c2", "lookup", ""),)),
        HistoryItem("assistant", "both found"),
        HistoryItem("user", "new question"),
    ]


def test_a_tool_exchange_goes_upstream_as_calls_and_results() -> None:
    messages = build_context(system_prompt="", history=_exchange(), budget_tokens=10_000, image_turns=1)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant", "user"]
    assert messages[1]["tool_calls"][1] == {
        "id": "c2",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"id": 2}'},
    }
    assert messages[3] == {"role": "tool", "tool_call_id": "c2", "content": "result two"}


def test_trimming_never_sends_tool_results_without_their_call() -> None:
    history = _exchange()
    # Room for the newest three (answer, "result two", question) but not the long "result one".
    budget = sum(estimate_tokens(item.text) for item in history[-3:]) + 10
    messages = build_context(system_prompt="", history=history, budget_tokens=budget, image_turns=1)
    assert [m["role"] for m in messages] == ["assistant", "user"]


def test_an_answer_cut_short_before_any_text_is_not_sent_but_its_tool_rounds_are() -> None:
    history = [*_exchange()[:-2], HistoryItem("assistant", ""), HistoryItem("user", "new question")]
    messages = build_context(system_prompt="", history=history, budget_tokens=10_000, image_turns=1)
    # Every call keeps its result, and no empty assistant message goes (some gateways refuse one).
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "user"]
