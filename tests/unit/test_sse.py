"""The sans-IO SSE decoder against the WHATWG event-stream rules, under hostile read boundaries."""

from __future__ import annotations

import random

import pytest

from core.upstream.sse import ServerSentEvent, SSEDecoder, SSEError

# Every feature at once: BOM, comments, multi-line data, event/id/retry fields, CJK and emoji, [DONE].
STREAM = (
    "\ufeff: keep-alive\n\n"
    'data: {"text": "東京 😀 café"}\n\n'
    "event: note\nid: 7\nretry: 1500\ndata: first line\ndata:second line\ndata\n\n"
    ": ping\n"
    "data:  two spaces\n\n"
    "data: [DONE]\n\n"
)
EXPECTED = [
    ServerSentEvent('{"text": "東京 😀 café"}'),
    ServerSentEvent("first line\nsecond line\n", event="note", id="7", retry=1500),
    ServerSentEvent(" two spaces", id="7"),  # only one space is stripped; the id persists
    ServerSentEvent("[DONE]", id="7"),
]


def decode_all(pieces: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events


def with_line_end(text: str, line_end: str) -> bytes:
    return text.replace("\n", line_end).encode()


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
def test_whole_stream_decodes_with_any_line_end(line_end: str) -> None:
    assert decode_all([with_line_end(STREAM, line_end)]) == EXPECTED


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
def test_every_byte_its_own_read_gives_the_same_events(line_end: str) -> None:
    data = with_line_end(STREAM, line_end)
    assert decode_all([data[i : i + 1] for i in range(len(data))]) == EXPECTED


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
def test_random_read_boundaries_give_the_same_events(line_end: str) -> None:
    data = with_line_end(STREAM, line_end)
    rng = random.Random(1234)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 12)))
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert decode_all(pieces) == EXPECTED


def test_mixed_line_ends_in_one_stream() -> None:
    assert decode_all([b"data: a\r\ndata: b\rdata: c\n\r\n"]) == [ServerSentEvent("a\nb\nc")]


def test_event_ending_in_cr_is_dispatched_without_waiting_for_the_next_read() -> None:
    # httpx-sse holds a trailing CR back until more bytes come; a stall then hides the event.
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r\r") == [ServerSentEvent("x")]
    assert decoder.feed(b"\ndata: y\r\n\r\n") == [ServerSentEvent("y")]  # the LF after CR is not a blank line


def test_crlf_split_between_reads_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # completes "\r\n", does not end the event
    assert decoder.feed(b"\r") == [ServerSentEvent("a")]
    assert decoder.feed(b"\n") == []


def test_utf8_character_split_across_reads_is_kept_whole() -> None:
    data = 'data: {"t": "😀東"}\n\n'.encode()
    emoji_start = data.index("😀".encode())
    pieces = [data[: emoji_start + 1], data[emoji_start + 1 : emoji_start + 3], data[emoji_start + 3 :]]
    assert decode_all(pieces) == [ServerSentEvent('{"t": "😀東"}')]


def test_comments_alone_dispatch_nothing() -> None:
    assert decode_all([b": ping\n\n:\n\n: OPENROUTER PROCESSING\n\n"]) == []


def test_event_type_without_data_is_reset_not_dispatched() -> None:
    assert decode_all([b"event: error\n\ndata: x\n\n"]) == [ServerSentEvent("x")]


def test_unknown_fields_and_bad_retry_are_ignored() -> None:
    assert decode_all([b"foo: bar\nretry: 1x\nid: a\x00b\ndata: x\n\n"]) == [ServerSentEvent("x")]


def test_empty_data_line_dispatches_an_empty_event() -> None:
    assert decode_all([b"data:\n\n"]) == [ServerSentEvent("")]


def test_bom_split_across_reads_is_stripped() -> None:
    assert decode_all([b"\xef", b"\xbb", b"\xbfdata: x\n\n"]) == [ServerSentEvent("x")]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert decode_all([b"data: \xff\n\n"]) == [ServerSentEvent("\ufffd")]


def test_unfinished_event_at_end_of_stream_is_discarded() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: complete\n\ndata: cut") == [ServerSentEvent("complete")]
    assert decoder.has_partial_event
    decoder.close()
    assert not decoder.has_partial_event


def test_endless_line_over_the_cap_is_an_error() -> None:
    decoder = SSEDecoder(max_event_bytes=1000)
    with pytest.raises(SSEError):
        for _ in range(20):
            decoder.feed(b"x" * 100)


def test_event_over_the_cap_is_an_error() -> None:
    decoder = SSEDecoder(max_event_bytes=1000)
    with pytest.raises(SSEError):
        decoder.feed(b"data: " + b"x" * 600 + b"\ndata: " + b"y" * 600 + b"\n")


def test_many_events_in_one_read_come_out_in_order() -> None:
    data = b"".join(f"data: {n}\n\n".encode() for n in range(1000))
    assert [event.data for event in decode_all([data])] == [str(n) for n in range(1000)]
