"""Where a growing Markdown answer is cut into messages: pure functions and a small deterministic state.

Cuts fall at natural boundaries (block, then line, then sentence, then word, then grapheme) and never
inside an inline construct, a surrogate pair or a grapheme cluster; a code block cut in two is closed and
reopened with its fence and language. Imports only the stdlib, pyromark and core.live.surface.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import pyromark

from core.live.surface import LengthUnit

# What the entities converter parses with (pulldown-cmark too), so that structure seen here matches what gets rendered.
PARSE_OPTIONS = (
    pyromark.Options.ENABLE_TABLES
    | pyromark.Options.ENABLE_STRIKETHROUGH
    | pyromark.Options.ENABLE_TASKLISTS
    | pyromark.Options.ENABLE_MATH
)


def count_units(text: str, unit: LengthUnit) -> int:
    """Length as the platform counts it: UTF-16 code units or code points."""
    if unit == "codepoint" or text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) >> 1


def prefix_within(text: str, max_units: int, unit: LengthUnit) -> int:
    """The largest index `i` with `count_units(text[:i]) <= max_units`."""
    if unit == "codepoint" or text.isascii() or len(text) * 2 <= max_units:
        return min(len(text), max_units)
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > max_units:
            return index
    return len(text)


# --- grapheme clusters (the parts of UAX #29 that chat text meets) ---------------------------------

_ZWJ = "\u200d"


def _extends(char: str) -> bool:
    """Characters that never start a cluster: marks, joiners, variation selectors, emoji modifiers, tags."""
    code = ord(char)
    return (
        char == _ZWJ
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
    )


def _is_regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _hangul(char: str) -> str:
    code = ord(char)
    if 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97C:
        return "L"
    if 0x1160 <= code <= 0x11A7 or 0xD7B0 <= code <= 0xD7C6:
        return "V"
    if 0x11A8 <= code <= 0x11FF or 0xD7CB <= code <= 0xD7FB:
        return "T"
    if 0xAC00 <= code <= 0xD7A3:
        return "LV" if (code - 0xAC00) % 28 == 0 else "LVT"
    return ""


def is_grapheme_boundary(text: str, index: int) -> bool:
    """True if a cut before `text[index]` splits no grapheme cluster and no surrogate pair."""
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff":
        return False
    if _extends(after) or before == _ZWJ:
        return False
    if _is_regional(before) and _is_regional(after):
        run = 0
        while index - run - 1 >= 0 and _is_regional(text[index - run - 1]):
            run += 1
        return run % 2 == 0  # flags are pairs: a cut between pairs only
    left, right = _hangul(before), _hangul(after)
    if left and right:
        return not (
            (left == "L" and right in ("L", "V", "LV", "LVT"))
            or (left in ("LV", "V") and right in ("V", "T"))
            or (left in ("LVT", "T") and right == "T")
        )
    return True


# Unicode's stream-safe text format (UAX #15) caps a run of non-starters at 30: a longer "cluster" is
# hostile (zalgo text), and is cut inside rather than searched back through on every cut.
_CLUSTER_MAX = 32


def grapheme_floor(text: str, index: int) -> int:
    """The nearest grapheme boundary at or before `index` (`index` itself past an absurdly long cluster)."""
    start = index
    while index > 0 and not is_grapheme_boundary(text, index):
        index -= 1
        if start - index > _CLUSTER_MAX:
            return start
    return index


# --- cutting one message off a Markdown segment ----------------------------------------------------


class Boundary(IntEnum):
    """How natural a cut is; lower is better."""

    BLOCK = 0
    LINE = 1
    SENTENCE = 2
    WORD = 3
    GRAPHEME = 4


@dataclass(frozen=True, slots=True)
class Cut:
    """A finished message's source (`head`, fences closed) and where the rest resumes in the segment.

    The rest of the segment is `carry + segment[resume:]`: `carry` reopens a cut code block (or repeats
    a cut table's header).
    """

    head: str
    resume: int
    carry: str = ""
    boundary: Boundary = Boundary.GRAPHEME
    examined: int = 0  # how much of the segment the decision looked at


@dataclass(frozen=True, slots=True)
class _Candidate:
    position: int
    boundary: Boundary
    close: str = ""  # appended to the head (a closing fence)
    reopen: str = ""  # put before the rest (the opening fence line, a table header)


# Matches start only at the first mark of a run, and runs are taken whole (possessive): a run of "."
# without a space after it is scanned once, not once per dot (which was quadratic in the run).
_SENTENCE_END = re.compile(r"(?<![.!?…])[.!?…]++[\"'”’)\]]*+\s+|(?<![。！？])[。！？]++[」』）]*+\s*")
_WHITESPACE = re.compile(r"\s+")
_INLINE = frozenset({"Emphasis", "Strong", "Strikethrough", "Link", "Image", "Superscript", "Subscript"})
_LEAVES = frozenset({"Paragraph", "Heading", "TableCell"})
# Delimiters that may open emphasis, code, a link or a spoiler (a `*` before a space cannot open).
_OPENERS = re.compile(r"\*(?!\s)|~~(?!\s)|`|\|\|(?!\s)|\[|\$(?!\s)|(?<![0-9A-Za-z])_(?!\s)")
# Text that would start a block at the beginning of a message: a cut inside a paragraph must not leave
# it first in the rest (it would turn into a list item, a heading, a quote, indented code...).
# Cuts are checked against the 12 characters after them, all inside the window (so the check is the same
# streamed or not): a cut closer than that to the window's end is not taken.
_BLOCK_START = re.compile(
    r"[ \t]{4}|[ \t]{0,3}(?:[*+\-]\s|\d{1,9}[.)]\s|#{1,6}\s|>|[=\-_*]{3,}|```|~~~|\||<[A-Za-z/!?])"
)
_LOOKAHEAD = 12
_FENCE = re.compile(r"([ \t]*)(`{3,}|~{3,})")
_REOPEN_MAX = 80  # characters of an opening fence line (fence, language) repeated in the next message


def events_with_range(text: str) -> Iterator[tuple[Any, Any]]:
    """pyromark's events, read by hand as plain dicts (its TypedDict union is too wide to narrow)."""
    return iter(pyromark.events_with_range(text, options=PARSE_OPTIONS))


def events(text: str) -> Iterator[Any]:
    """pyromark's events without ranges, as plain values."""
    return iter(pyromark.events(text, options=PARSE_OPTIONS))


def byte_offsets(text: str) -> Callable[[int], int]:
    """pyromark's UTF-8 byte offsets in `text` -> str indices."""
    return _ByteOffsets(text)


def _kind(value: Any) -> str:
    return value if isinstance(value, str) else next(iter(value))


class _ByteOffsets:
    """UTF-8 byte offsets (what pyromark reports) to str indices; work only for non-ASCII characters."""

    def __init__(self, text: str) -> None:
        self._starts: list[int] = []  # byte offset of each non-ASCII character
        self._extra: list[int] = [0]  # bytes beyond one per character, before and including each
        for match in _NON_ASCII.finditer(text):
            code = ord(match.group())
            self._starts.append(match.start() + self._extra[-1])
            self._extra.append(self._extra[-1] + (1 if code < 0x800 else 2 if code < 0x10000 else 3))

    def __call__(self, offset: int) -> int:
        if not self._starts:
            return offset
        return offset - self._extra[bisect.bisect_left(self._starts, offset)]


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _starts_block(prefix: str, position: int) -> bool:
    return position > len(prefix) - _LOOKAHEAD or _BLOCK_START.match(prefix, position) is not None


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


CodeBlock = tuple[int, int, str, str]
"""A code block in a window: (start, end, closing fence, reopening line)."""


def find_candidates(prefix: str) -> tuple[list[_Candidate], list[CodeBlock]]:
    """Every natural cut in `prefix`, and its code blocks (for hard cuts inside one)."""
    scanner = _Scanner(prefix)
    to_char = _ByteOffsets(prefix)
    for event, span in events_with_range(prefix):
        start, end = to_char(span["start"]), to_char(span["end"])
        if isinstance(event, str):  # SoftBreak, HardBreak, Rule
            scanner.on_break(event, start, end)
            continue
        key, value = next(iter(event.items()))
        if key == "Start":
            scanner.on_start(_kind(value), value, start, end)
        elif key == "End":
            scanner.on_end(_kind(value), start, end)
        elif key == "Text":
            scanner.on_text(start, end)
    return scanner.candidates, scanner.code_blocks


class _Scanner:
    """Walks pyromark's events over a window, noting where a message could end."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.candidates: list[_Candidate] = []
        self.code_blocks: list[CodeBlock] = []
        self._stack: list[str] = []  # open blocks
        self._inline_depth = 0
        self._tainted = False  # an unmatched delimiter earlier in this paragraph
        self._code: tuple[str, str] | None = None  # (close, reopen) of the code block we are in
        self._table_header = ""
        self._table_end = -1

    def _add(self, position: int, boundary: Boundary, close: str = "", reopen: str = "") -> None:
        self.candidates.append(_Candidate(position, boundary, close, reopen))

    def on_break(self, event: str, start: int, end: int) -> None:
        if event == "Rule" and not self._stack and start > 0:
            self._add(_line_start(self.prefix, start), Boundary.BLOCK)
        elif event in ("SoftBreak", "HardBreak") and self._inline_depth == 0 and not _starts_block(self.prefix, end):
            self._add(end, Boundary.WORD if self._tainted else Boundary.LINE)

    def on_start(self, kind: str, value: Any, start: int, end: int) -> None:
        if kind in _INLINE:
            self._inline_depth += 1
            return
        stack, line = self._stack, _line_start(self.prefix, start)
        if not stack and start > 0:
            if self._table_end >= 0 and "\n\n" not in self.prefix[self._table_end - 1 : start]:
                self._add(line, Boundary.LINE, reopen=self._table_header)  # a table row still arriving
            else:
                self._add(line, Boundary.BLOCK)
            self._table_end = -1
        elif len(stack) == 1 and stack[0] in ("List", "BlockQuote"):
            self._add(line, Boundary.LINE)
        elif kind == "TableRow" and stack == ["Table"]:
            self._add(line, Boundary.LINE, reopen=self._table_header)
        if kind == "CodeBlock":
            self._code = _code_repair(self.prefix, start, value["CodeBlock"])
            self.code_blocks.append((start, end, *self._code))
        elif kind in _LEAVES:
            self._tainted = False
        stack.append(kind)

    def on_end(self, kind: str, start: int, end: int) -> None:
        if kind in _INLINE:
            self._inline_depth -= 1
            return
        if self._stack:
            self._stack.pop()
        if kind == "CodeBlock":
            self._code = None
        elif kind == "Table" and not self._stack:
            self._table_end = end
        elif kind == "TableHead" and self._stack == ["Table"]:
            prefix = self.prefix
            line_end = prefix.find("\n", prefix.find("\n", end - 1) + 1)  # the delimiter row's end
            self._table_header = prefix[_line_start(prefix, start) : line_end + 1] if line_end >= 0 else ""

    def on_text(self, start: int, end: int) -> None:
        prefix = self.prefix
        if self._code is not None:
            close, reopen = self._code
            newline = prefix.find("\n", start, end)
            while newline != -1:
                if newline + 1 < end:
                    self._add(newline + 1, Boundary.LINE, close, reopen)
                newline = prefix.find("\n", newline + 1, end)
            for match in _WHITESPACE.finditer(prefix, start, end):
                if "\n" not in match.group():
                    self._add(match.end(), Boundary.WORD, close, reopen)
        elif self._inline_depth == 0 and self._stack and self._stack[-1] in _LEAVES:
            weak = Boundary.GRAPHEME if self._tainted else None
            for match in _SENTENCE_END.finditer(prefix, start, end):
                if not _starts_block(prefix, match.end()):
                    self._add(match.end(), weak or Boundary.SENTENCE)
            for match in _WHITESPACE.finditer(prefix, start, end):
                if not _starts_block(prefix, match.end()):
                    self._add(match.end(), weak or Boundary.WORD)
            if _OPENERS.search(prefix, start, end):
                self._tainted = True  # an unmatched delimiter may still be closed by text to come


def _code_repair(text: str, start: int, kind: Any) -> tuple[str, str]:
    """(closing fence, reopening line) for a fenced block starting at `start`; ("", "") if indented."""
    if not (isinstance(kind, dict) and "Fenced" in kind):
        return "", ""
    line_start = _line_start(text, start)
    line_end = text.find("\n", start)
    opening = text[line_start : line_end if line_end != -1 else len(text)]
    match = _FENCE.match(opening)
    if match is None or len(opening) > _REOPEN_MAX:
        return "", ""  # a fence line longer than any real one is hostile: carried, it would fill every message
    indent, fence = match.groups()
    return f"\n{indent}{fence}", opening + "\n"


def cut_segment(
    segment: str,
    *,
    window_units: int,
    unit: LengthUnit,
    fits: Callable[[str], bool],
    carry_length: int = 0,
    avoid: Sequence[tuple[int, int]] = (),
) -> Cut:
    """Cut one message off `segment`, looking only at its first `window_units`.

    Depends only on that window (and `avoid`), so a streamed reply and the same text cut at once agree.
    `fits(head)` says whether the head, rendered, is within the platform limit. `avoid` holds spans
    (segment indices) known, from the whole text, to be inline constructs: no cut falls inside one. The
    head is never empty: the cut falls after `carry_length` (the reopened fence starting the segment).
    """
    end = prefix_within(segment, window_units, unit)
    prefix = segment[:end]
    candidates, code_blocks = find_candidates(prefix)
    floor = carry_length + (end - carry_length) // 2  # prefer cuts that fill at least half a message
    usable = [
        c
        for c in candidates
        if carry_length < c.position <= end and prefix[: c.position].strip() and not is_inside(avoid, c.position)
    ]
    # First a good cut in the second half of the window; else the best cut anywhere.
    first = [c for c in usable if c.position >= floor and c.boundary < Boundary.GRAPHEME]
    for pool in (first, usable):
        for candidate in sorted(pool, key=lambda c: (c.boundary, -c.position))[:12]:
            cut = _apply(prefix, candidate)
            if cut.head.strip() and fits(cut.head):
                return cut
    return _hard_cut(segment, end, code_blocks, fits, carry_length)


def is_inside(spans: Sequence[tuple[int, int]], position: int) -> bool:
    """Whether `position` falls strictly inside one of the sorted, non-nested-overlapping `spans`."""
    index = bisect.bisect_left(spans, (position, position)) - 1
    return any(start < position < stop for start, stop in spans[max(index - 2, 0) : index + 1])


def inline_spans(text: str) -> list[tuple[int, int]]:
    """The outermost inline constructs (emphasis, links, code spans...) of `text`, as sorted str spans."""
    to_char = _ByteOffsets(text)
    spans: list[tuple[int, int]] = []
    depth = 0
    for event, span in events_with_range(text):
        if isinstance(event, str):
            continue
        key, value = next(iter(event.items()))
        if key in ("Start", "End") and _kind(value) in _INLINE:
            depth += 1 if key == "Start" else -1
            if key == "End" and depth == 0:
                spans.append((to_char(span["start"]), to_char(span["end"])))
        elif key in ("Code", "InlineMath", "InlineHtml") and depth == 0:
            spans.append((to_char(span["start"]), to_char(span["end"])))
    return spans


def _apply(prefix: str, candidate: _Candidate) -> Cut:
    head = prefix[: candidate.position]
    head = head.rstrip("\n") + candidate.close if candidate.close else head.rstrip()
    return Cut(head, candidate.position, candidate.reopen, candidate.boundary, len(prefix))


def _hard_cut(
    segment: str,
    end: int,
    code_blocks: list[CodeBlock],
    fits: Callable[[str], bool],
    carry_length: int,
) -> Cut:
    """No natural cut fits: cut at the last grapheme boundary that does, reopening a cut code block."""
    prefix = segment[:end]
    position = max(end - _LOOKAHEAD, carry_length + 1) if end < len(segment) else end
    # Stepping back over text that would start a block is bounded: in text made of nothing else ("> > >",
    # "- - -") every position starts one, and a cut one character long would make the layout quadratic.
    lowest = carry_length + 1 + (position - carry_length) // 2
    while True:
        position = max(grapheme_floor(segment, position), carry_length + 1)
        close = reopen = ""
        for start, stop, block_close, block_reopen in code_blocks:
            if start < position < stop:
                close, reopen = block_close, block_reopen
        if position > lowest and not close and _BLOCK_START.match(prefix, position):
            position -= 1
            continue
        cut = _apply(prefix, _Candidate(position, Boundary.GRAPHEME, close, reopen))
        if position <= carry_length + 1 or fits(cut.head):
            return cut
        position -= max(1, (position - carry_length) // 8)
