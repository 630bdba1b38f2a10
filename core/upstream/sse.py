"""Sans-IO Server-Sent Events decoder: bytes in, `ServerSentEvent`s out (WHATWG event-stream rules).

Why not httpx-sse 0.4: its line decoder holds a trailing CR back until the next read (to see whether an
LF follows), so with CR line ends every event arrives one network read late and the last event before a
stall is never seen; it also decodes with the response's declared charset (SSE is always UTF-8) and keeps
a leading BOM. Here a CR ends the line at once and a following LF is skipped when it comes. Lines are cut
on bytes and decoded whole, so a UTF-8 character split across reads waits until its line is complete.
No I/O, no imports from the rest of core.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_EVENT_BYTES = 32 * 1024 * 1024
"""A generous cap (a streamed image can be megabytes in one event) that still stops an endless line."""

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event. `event` is "" for the default type ("message")."""

    data: str
    event: str = ""
    id: str = ""
    retry: int | None = None


class SSEError(ValueError):
    """The byte stream cannot be an event stream (a line or an event over the size cap)."""


class SSEDecoder:
    """Feed it network reads in order; it returns the events each read completes.

    At the end of the stream call `close()`: per the spec an event without its closing blank line is
    discarded, so `close()` only checks that nothing is left and never dispatches.
    """

    __slots__ = (
        "_data",
        "_data_bytes",
        "_event",
        "_id",
        "_max_event_bytes",
        "_pending",
        "_retry",
        "_skip_lf",
        "_started",
    )

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._max_event_bytes = max_event_bytes
        self._pending = bytearray()  # the unfinished last line; never holds a CR or LF
        self._skip_lf = False  # the previous read ended in CR: an LF opening this one belongs to it
        self._started = False  # a BOM is stripped from the first line only
        self._data: list[bytes] = []
        self._data_bytes = 0
        self._event = b""
        self._id = b""  # the spec keeps the last event id across events
        self._retry: int | None = None

    @property
    def has_partial_event(self) -> bool:
        """True when bytes of an event that was never dispatched are buffered (the stream was cut)."""
        return bool(self._pending or self._data or self._event)

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\n" not in chunk and b"\r" not in chunk:
            # No line ends: just remember (bytearray append is amortised O(1), so byte-per-read is linear).
            self._pending += chunk
            if len(self._pending) > self._max_event_bytes:
                raise SSEError("line over the size cap")
            return []
        if self._pending:
            self._pending += chunk
            buffer = bytes(self._pending)
            self._pending.clear()
        else:
            buffer = chunk
        if b"\r" in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._pending += lines.pop()  # after the last line end: unfinished (b"" when the read ended a line)
        if not self._started:
            self._started = True
            if lines[0].startswith(_BOM):
                lines[0] = lines[0][3:]
        events: list[ServerSentEvent] = []
        for line in lines:
            if line.startswith(b"data:"):
                value = line[6:] if line[5:6] == b" " else line[5:]
                self._data.append(value)
                self._data_bytes += len(value)
                if self._data_bytes > self._max_event_bytes:
                    raise SSEError("event over the size cap")
            elif not line:
                if self._data:
                    events.append(self._dispatch())
                else:
                    self._event = b""  # the spec resets the type even when nothing is dispatched
            elif line[0] != 0x3A:  # lines starting with ":" are comments (keep-alives)
                self._field(line)
        return events

    def close(self) -> None:
        """End of stream: drop any undispatched event, as the spec says."""
        self._pending.clear()
        self._data.clear()
        self._data_bytes = 0
        self._event = b""

    def _dispatch(self) -> ServerSentEvent:
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = ServerSentEvent(
            data.decode("utf-8", "replace"),
            self._event.decode("utf-8", "replace"),
            self._id.decode("utf-8", "replace"),
            self._retry,
        )
        self._data = []
        self._data_bytes = 0
        self._event = b""
        self._retry = None
        return event

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"event":
            self._event = value
        elif name == b"data":  # "data" without a colon: an empty data line
            self._data.append(value)
        elif name == b"id":
            if b"\x00" not in value:
                self._id = value
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)
        # any other field is ignored, per the spec
