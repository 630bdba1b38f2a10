"""A leading `<think>...</think>` block in content text is reasoning: split it off, streamed or whole.

Split from chunks.py, which feeds it every content delta. Pure: no I/O; imports only core.events.
"""

from __future__ import annotations

from core.events import Event, ReasoningDelta, TextDelta

_OPEN_TAG = "<think>"
_CLOSE_TAG = "</think>"


class ThinkSplitter:
    """Routes content text: a leading `<think>...</think>` block is reasoning, everything else is text.

    Tags may arrive split across deltas ("<th" + "ink>"), so a possible tag prefix is held back until
    the next piece decides it. Only a block at the very start (after whitespace) counts; a later
    "<think>" is ordinary text. Whitespace right after the closing tag is dropped.
    """

    __slots__ = ("_held", "_state")

    _START, _THINK, _AFTER, _TEXT = range(4)

    def __init__(self) -> None:
        self._state = self._START
        self._held = ""

    def feed(self, piece: str, out: list[Event]) -> None:
        state = self._state
        if state == self._TEXT:
            out.append(TextDelta(piece))
            return
        if state == self._START:
            held = self._held + piece
            head = held.lstrip()
            if not head or (len(head) < len(_OPEN_TAG) and _OPEN_TAG.startswith(head)):
                self._held = held  # still undecided: whitespace, or "<th"
                return
            self._held = ""
            if not head.startswith(_OPEN_TAG):
                self._state = self._TEXT
                out.append(TextDelta(held))
                return
            state = self._state = self._THINK
            piece = head[len(_OPEN_TAG) :]
        if state == self._THINK:
            held = self._held + piece
            end = held.find(_CLOSE_TAG)
            if end < 0:
                keep = _tag_prefix_length(held, _CLOSE_TAG)
                if len(held) > keep:
                    out.append(ReasoningDelta(held[: len(held) - keep]))
                self._held = held[len(held) - keep :]
                return
            if end:
                out.append(ReasoningDelta(held[:end]))
            self._held = ""
            self._state = self._AFTER
            piece = held[end + len(_CLOSE_TAG) :]
        piece = piece.lstrip()  # _AFTER: the answer starts at its first visible character
        if piece:
            self._state = self._TEXT
            out.append(TextDelta(piece))

    def flush(self, out: list[Event]) -> None:
        """End of content: what was held back is text (undecided start) or reasoning (unclosed block)."""
        if self._held:
            out.append(ReasoningDelta(self._held) if self._state == self._THINK else TextDelta(self._held))
        self._held = ""


def split_think(content: str) -> tuple[str, str]:
    """(reasoning, text) of a complete content string."""
    events: list[Event] = []
    splitter = ThinkSplitter()
    splitter.feed(content, events)
    splitter.flush(events)
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    return reasoning, "".join(e.text for e in events if isinstance(e, TextDelta))


def _tag_prefix_length(text: str, tag: str) -> int:
    """Length of the longest end of `text` that could begin `tag` (a tag split across deltas)."""
    start = text.rfind("<", max(0, len(text) - len(tag) + 1))
    if start < 0:
        return 0
    return len(text) - start if tag.startswith(text[start:]) else 0
