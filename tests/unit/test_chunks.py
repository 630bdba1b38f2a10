"""Upstream JSON -> events: deltas, reasoning in all three forms, tool calls, usage, completions, errors."""

from __future__ import annotations

from typing import Any

import pytest

from core.events import Event, Finished, ReasoningDelta, TextDelta, ToolCall, Usage
from core.upstream.chunks import (
    ChunkError,
    ErrorChunk,
    ErrorInfo,
    StreamAssembler,
    parse_completion,
    parse_error_body,
    parse_model_ids,
    parse_object,
    parse_usage,
    split_think,
)


def chunk(delta: Any = None, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason}
    if delta is not None:
        choice["delta"] = delta
    return {"id": "c", "object": "chat.completion.chunk", "choices": [choice], **extra}


def run(chunks: list[dict[str, Any]]) -> list[Event]:
    assembler = StreamAssembler()
    out: list[Event] = []
    for item in chunks:
        assembler.feed(item, out)
    tail = assembler.finish()
    assert tail is not None, "stream was judged cut short"
    return out + tail


def texts(events: list[Event]) -> tuple[str, str]:
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    return reasoning, "".join(e.text for e in events if isinstance(e, TextDelta))


def content_chunks(*pieces: str) -> list[dict[str, Any]]:
    return [chunk({"content": piece}) for piece in pieces] + [chunk({}, "stop")]


# -- parse_object ------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '"text"', "", "null"])
def test_parse_object_refuses_what_is_not_a_json_object(data: str) -> None:
    with pytest.raises(ChunkError):
        parse_object(data)


def test_parse_object_accepts_bytes_and_str() -> None:
    assert parse_object(b'{"a": "\xc3\xa9"}') == parse_object('{"a": "é"}') == {"a": "é"}


# -- deltas ------------------------------------------------------------------------------------------


def test_deltas_come_out_as_they_arrive_and_finished_is_last() -> None:
    events = run([chunk({"role": "assistant", "content": ""}), *content_chunks("Hel", "lo")])
    assert events == [TextDelta("Hel"), TextDelta("lo"), Finished("stop")]


def test_empty_choices_missing_delta_and_null_content_are_normal() -> None:
    events = run(
        [
            {"id": "c", "choices": []},
            {"id": "c"},
            chunk(None),
            chunk({"content": None}),
            chunk({"role": "assistant"}),
            chunk({"content": "x"}),
            chunk({}, "stop"),
        ]
    )
    assert events == [TextDelta("x"), Finished("stop")]


def test_other_choices_than_zero_are_ignored() -> None:
    second = {"id": "c", "choices": [{"index": 1, "delta": {"content": "other"}, "finish_reason": None}]}
    assert run([second, *content_chunks("mine")]) == [TextDelta("mine"), Finished("stop")]


def test_content_given_as_parts_is_joined() -> None:
    events = run(
        [
            chunk({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
            chunk({}, "stop"),
        ]
    )
    assert texts(events) == ("", "ab")


def test_no_finish_reason_means_cut_short() -> None:
    assembler = StreamAssembler()
    assembler.feed(chunk({"content": "partial"}), [])
    assert assembler.finish() is None


@pytest.mark.parametrize(
    "bad",
    [
        {"choices": {"index": 0}},
        {"choices": ["x"]},
        {"choices": [{"index": 0, "delta": "text"}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": {"id": "x"}}}]},
    ],
)
def test_wrong_shapes_are_chunk_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ChunkError):
        StreamAssembler().feed(bad, [])


def test_error_object_in_the_stream_is_raised_with_its_fields() -> None:
    with pytest.raises(ErrorChunk) as caught:
        StreamAssembler().feed({"error": {"message": "boom", "type": "server_error", "code": 502}}, [])
    assert caught.value.info == ErrorInfo("boom", "server_error", "502")


def test_null_error_field_in_a_normal_chunk_is_not_an_error() -> None:
    assert run([{**chunk({"content": "ok"}), "error": None}, chunk({}, "stop")]) == [
        TextDelta("ok"),
        Finished("stop"),
    ]


# -- reasoning ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_fields_become_reasoning_deltas(field: str) -> None:
    events = run([chunk({field: "think", "content": None}), chunk({field: "ing"}), *content_chunks("answer")])
    assert events[:2] == [ReasoningDelta("think"), ReasoningDelta("ing")]
    assert texts(events) == ("thinking", "answer")


def test_reasoning_sent_in_both_fields_is_counted_once() -> None:
    events = run([chunk({"reasoning_content": "r", "reasoning": "r"}), chunk({}, "stop")])
    assert texts(events) == ("r", "")


THINK_CONTENT = "<think>Let me see: 2 < 3.</think>\n\nThe answer is <b>yes</b>."


@pytest.mark.parametrize("cut", range(1, len(THINK_CONTENT)))
def test_think_block_split_anywhere_is_reasoning(cut: int) -> None:
    events = run(content_chunks(THINK_CONTENT[:cut], THINK_CONTENT[cut:]))
    assert texts(events) == ("Let me see: 2 < 3.", "The answer is <b>yes</b>.")


def test_think_block_one_character_per_delta() -> None:
    events = run(content_chunks(*THINK_CONTENT))
    assert texts(events) == ("Let me see: 2 < 3.", "The answer is <b>yes</b>.")
    assert not any("think" in e.text for e in events if isinstance(e, ReasoningDelta | TextDelta))


def test_tags_split_as_th_plus_ink() -> None:
    events = run(content_chunks("<th", "ink>deep", "</th", "ink>done"))
    assert texts(events) == ("deep", "done")


def test_reasoning_streams_before_the_closing_tag_arrives() -> None:
    assembler = StreamAssembler()
    out: list[Event] = []
    assembler.feed(chunk({"content": "<think>step one, "}), out)
    assert out == [ReasoningDelta("step one, ")]


def test_leading_whitespace_before_think_is_allowed() -> None:
    assert texts(run(content_chunks("\n <think>r</think>t"))) == ("r", "t")


def test_think_later_in_the_answer_is_text() -> None:
    assert texts(run(content_chunks("Hi <think>not reasoning</think>"))) == (
        "",
        "Hi <think>not reasoning</think>",
    )


def test_a_start_that_only_looks_like_a_tag_is_text() -> None:
    assert texts(run(content_chunks("<th", "e end>"))) == ("", "<the end>")
    assert texts(run(content_chunks("<th"))) == ("", "<th")


def test_unclosed_think_block_is_all_reasoning() -> None:
    assert texts(run(content_chunks("<think>never closed </th"))) == ("never closed </th", "")


def test_split_think_on_a_whole_string() -> None:
    assert split_think(THINK_CONTENT) == ("Let me see: 2 < 3.", "The answer is <b>yes</b>.")
    assert split_think("plain") == ("", "plain")


# -- tool calls --------------------------------------------------------------------------------------


def tool_delta(
    index: int | None, call_id: str | None = None, name: str | None = None, args: str = ""
) -> dict[str, Any]:
    delta: dict[str, Any] = {"function": {"arguments": args}}
    if index is not None:
        delta["index"] = index
    if call_id is not None:
        delta["id"] = call_id
        delta["type"] = "function"
    if name is not None:
        delta["function"]["name"] = name
    return delta


def tool_run(deltas: list[dict[str, Any]]) -> list[Event]:
    return run([chunk({"tool_calls": [d]}) for d in deltas] + [chunk({}, "tool_calls")])


EXPECTED_CALLS = [
    ToolCall("call_a", "get_weather", '{"city": "Oslo"}'),
    ToolCall("call_b", "get_time", '{"tz": "UTC"}'),
]


def test_parallel_tool_calls_by_index_interleaved() -> None:
    events = tool_run(
        [
            tool_delta(0, "call_a", "get_weather"),
            tool_delta(1, "call_b", "get_time"),
            tool_delta(0, args='{"city": '),
            tool_delta(1, args='{"tz": "UTC"}'),
            tool_delta(0, args='"Oslo"}'),
        ]
    )
    assert events == [*EXPECTED_CALLS, Finished("tool_calls")]


def test_tool_calls_without_index() -> None:
    events = tool_run(
        [
            tool_delta(None, "call_a", "get_weather"),
            tool_delta(None, args='{"city": "Oslo"}'),
            tool_delta(None, "call_b", "get_time"),
            tool_delta(None, args='{"tz": "UTC"}'),
        ]
    )
    assert events == [*EXPECTED_CALLS, Finished("tool_calls")]


def test_tool_calls_reusing_index_zero_with_distinct_ids() -> None:
    events = tool_run(
        [
            tool_delta(0, "call_a", "get_weather"),
            tool_delta(0, args='{"city": "Oslo"}'),
            tool_delta(0, "call_b", "get_time"),
            tool_delta(0, args='{"tz": "UTC"}'),
        ]
    )
    assert events == [*EXPECTED_CALLS, Finished("tool_calls")]


def test_tool_call_id_repeated_in_every_delta_and_name_repeated() -> None:
    events = tool_run(
        [
            tool_delta(0, "call_a", "get_weather", '{"city": '),
            tool_delta(0, "call_a", "get_weather", '"Oslo"}'),
        ]
    )
    assert events == [EXPECTED_CALLS[0], Finished("tool_calls")]


def test_tool_calls_come_before_usage_and_finished() -> None:
    events = run(
        [
            chunk({"content": "checking"}),
            chunk({"tool_calls": [tool_delta(0, "call_a", "get_weather", '{"city": "Oslo"}')]}),
            chunk({}, "tool_calls"),
            {
                "id": "c",
                "choices": [],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            },
        ]
    )
    assert events == [TextDelta("checking"), EXPECTED_CALLS[0], Usage(3, 2, 5), Finished("tool_calls")]


# -- usage -------------------------------------------------------------------------------------------


def test_usage_from_the_final_chunk_with_empty_choices() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "total_tokens": 30,
        "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 7},
    }
    events = run([*content_chunks("x"), {"id": "c", "choices": [], "usage": usage}])
    assert events[-2:] == [Usage(10, 20, 30, cached_tokens=4, reasoning_tokens=7), Finished("stop")]


def test_usage_inside_the_choice() -> None:
    final = chunk({}, "stop")
    final["choices"][0]["usage"] = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert run([chunk({"content": "x"}), final])[-2:] == [Usage(1, 2, 3), Finished("stop")]


def test_null_usage_on_every_chunk_is_ignored() -> None:
    assert run([chunk({"content": "x"}, usage=None), chunk({}, "stop", usage=None)]) == [
        TextDelta("x"),
        Finished("stop"),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {
                "prompt_tokens": 5,
                "completion_tokens": 6,
                "total_tokens": 11,
                "prompt_tokens_details": None,
                "completion_tokens_details": None,
            },
            Usage(5, 6, 11),
        ),
        ({"prompt_tokens": 5, "completion_tokens": 6}, Usage(5, 6, 11)),
        (
            {
                "prompt_tokens": None,
                "completion_tokens": "7",
                "prompt_tokens_details": {"cached_tokens": None},
            },
            Usage(0, 7, 7),
        ),
        ({}, Usage()),
        ({"input_tokens": 2, "output_tokens": 3}, Usage(2, 3, 5)),
    ],
)
def test_missing_or_null_usage_details_are_zero(raw: dict[str, Any], expected: Usage) -> None:
    assert parse_usage(raw) == expected


def test_usage_that_is_not_an_object_is_none() -> None:
    assert parse_usage(None) is None
    assert parse_usage([1]) is None


# -- completions -------------------------------------------------------------------------------------


def completion(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        **extra,
    }


def test_completion_with_image_markdown_and_openrouter_images() -> None:
    body = completion(
        {
            "role": "assistant",
            "content": "Here: ![generated image](data:image/png;base64,iVBORw0KGgo=)",
            "images": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://cdn.example/cat.png"}},
            ],
        },
        usage={"prompt_tokens": 12, "completion_tokens": 0, "total_tokens": 12},
    )
    result = parse_completion(body)
    assert result.text == "Here: ![generated image](data:image/png;base64,iVBORw0KGgo=)"
    assert result.image_urls == ("data:image/png;base64,AAAA", "https://cdn.example/cat.png")
    assert result.usage == Usage(12, 0, 12)
    assert result.finish_reason == "stop"
    assert result.tool_calls == ()


def test_completion_content_parts_reasoning_and_tool_calls() -> None:
    body = completion(
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "A"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                {"type": "text", "text": "B"},
            ],
            "reasoning_content": "because",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        }
    )
    result = parse_completion(body)
    assert (result.text, result.reasoning, result.image_urls) == ("AB", "because", ("https://x/y.png",))
    assert result.tool_calls == (EXPECTED_CALLS[0],)
    assert result.usage is None


def test_completion_with_think_block_and_null_content() -> None:
    assert parse_completion(completion({"content": "<think>hmm</think>\nYes"})).reasoning == "hmm"
    assert parse_completion(completion({"content": "<think>hmm</think>\nYes"})).text == "Yes"
    assert parse_completion(completion({"content": None, "reasoning": "r"})).text == ""


@pytest.mark.parametrize("body", [{"choices": []}, {"object": "chat.completion"}, {"choices": [{"index": 1}]}])
def test_completion_without_choice_zero_is_a_chunk_error(body: dict[str, Any]) -> None:
    with pytest.raises(ChunkError):
        parse_completion(body)


# -- error bodies and model lists --------------------------------------------------------------------


def test_error_bodies_of_every_shape() -> None:
    assert parse_error_body(b'{"error": {"message": "m", "type": "t", "code": 400}}') == ErrorInfo("m", "t", "400")
    assert parse_error_body(b'[{"error": {"message": "g", "code": 429}}]') == ErrorInfo("g", "", "429")
    assert parse_error_body(b'{"error": "plain"}') == ErrorInfo("plain")
    assert parse_error_body(b'{"detail": "fastapi"}') == ErrorInfo("fastapi")
    assert parse_error_body(b"<html>Bad Gateway</html>") == ErrorInfo("<html>Bad Gateway</html>")
    assert parse_error_body(b"") == ErrorInfo()


def test_model_ids_sorted_and_unique() -> None:
    body = {"object": "list", "data": [{"id": "b/m"}, {"id": "a/m"}, {"id": "b/m"}, {"name": "no id"}]}
    assert parse_model_ids(body) == ["a/m", "b/m"]
    assert parse_model_ids(["x", "a"]) == ["a", "x"]
    with pytest.raises(ChunkError):
        parse_model_ids({"models": "none"})
