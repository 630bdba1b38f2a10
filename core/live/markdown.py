"""Markdown rendered in each markup dialect, plain fallbacks, notes, reasoning, embedded images, visible text.

Pure: imports the stdlib, the entities converter and core.live (pyromark through core.live.split).
"""

from __future__ import annotations

import logging
import re
from typing import Literal

from telegramify_markdown import convert as markdown_to_entities

from core.live.split import byte_offsets, count_units, events, events_with_range, grapheme_floor, prefix_within
from core.live.surface import Dialect, Entity, LengthUnit, Rendered

log = logging.getLogger(__name__)

_KEPT_ENTITIES = frozenset(
    {
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "pre",
        "text_link",
        "blockquote",
        "expandable_blockquote",
    }
)


def render_final(source: str, dialect: Dialect) -> Rendered:
    """The formatted form of a complete piece of Markdown.

    "entities": plain text plus formatting spans (converted on pulldown-cmark). The platform parses
    nothing, so no escaping can go wrong (a parse error needs markup to parse), and the length we measure
    is exactly what it counts (UTF-16 of the text); a markup language instead would need escaping of
    every special character and a parse on the platform's side that one stray character breaks.
    "markdown": the source passes through (an unclosed fence is closed); the platform parses it, and
    cutting it safely is core.live.split's work.
    """
    if dialect == "markdown":
        text = source.strip()
        fence = open_fence(text)  # an answer cut off inside a code block still shows it as code
        text = f"{text}\n{fence}" if fence else text
        return Rendered(neutralize_links(text, _code_spans(text)) if _LINK_NOT_WEB.search(text) else text, "markdown")
    try:
        text, entities = markdown_to_entities(source)
    except Exception:  # a converter bug must not cost the answer: show it unformatted instead
        log.exception("Markdown to entities failed; sending plain text")
        return Rendered(source.strip(), "plain")
    kept = tuple(
        Entity(e.type, e.offset, e.length, e.url or "", e.language or "")
        for e in entities
        if e.type in _KEPT_ENTITIES and (e.type != "text_link" or is_web_link(e.url or ""))
    )
    return _trimmed(text, kept)


def render_live(source: str, dialect: Dialect) -> Rendered:
    """An intermediate edit: sane for any prefix of an answer, and cheap (no parse).

    "entities": the Markdown source shows as plain text; the formatting arrives with the message's final
    text. "markdown": the platform renders it and shows unclosed `**` literally, so the source passes
    through, with an open code fence closed so the code grows inside its block.
    """
    text = source.strip()
    if dialect == "entities":
        return Rendered(text, "plain")
    fence = open_fence(text)
    return Rendered(neutralize_links(f"{text}\n{fence}" if fence else text), "markdown")


def render_plain(rendered: Rendered, dialect: Dialect) -> Rendered:
    """The same visible text with no formatting: the fallback when a platform refuses the markup."""
    if dialect == "entities":
        return Rendered(rendered.text, "plain")
    return Rendered(escape_markdown(visible_text(rendered)), "markdown")


def render_label(text: str, dialect: Dialect) -> Rendered:
    """A short line of the engine's own (status, note) shown as it is."""
    return Rendered(text, "plain") if dialect == "entities" else Rendered(escape_markdown(text), "markdown")


def with_note(
    rendered: Rendered | None, note: str, dialect: Dialect, *, max_units: int, unit: LengthUnit
) -> Rendered | None:
    """`rendered` followed by a note in small print; None if that outgrows the limit."""
    if dialect == "markdown":
        tail = f"-# {escape_markdown(note)}"
        text = f"{rendered.text}\n\n{tail}" if rendered else tail
        result = Rendered(text, "markdown")
    else:
        base = rendered or Rendered("")
        prefix = f"{base.text}\n\n" if base.text else ""
        offset = count_units(prefix, "utf16")
        italic = Entity("italic", offset, count_units(note, "utf16"))
        result = Rendered(prefix + note, "entities", (*base.entities, italic))
    return result if count_units(result.text, unit) <= max_units else None


def render_reasoning(
    text: str, dialect: Dialect, *, is_collapsed: bool, max_units: int, unit: LengthUnit, ellipsis: str
) -> Rendered:
    """The model's reasoning as a quote: its latest part if it is longer than a message.

    "entities": a blockquote while it streams, an expandable (collapsed) one once the answer starts.
    "markdown": subtext lines (`-# `), small and grey either way.
    """
    body = text.strip()
    budget = max_units
    while True:
        shown = _tail(body, budget, unit, ellipsis)
        if dialect == "entities":
            kind = "expandable_blockquote" if is_collapsed else "blockquote"
            result = Rendered(shown, "entities", (Entity(kind, 0, count_units(shown, "utf16")),))
        else:
            lines = (f"-# {escape_markdown(line)}" for line in shown.splitlines() if line.strip())
            result = Rendered("\n".join(lines), "markdown")
        overshoot = count_units(result.text, unit) - max_units
        if overshoot <= 0:
            return result
        budget -= max(overshoot, budget // 16)


def _tail(text: str, max_units: int, unit: LengthUnit, ellipsis: str) -> str:
    if count_units(text, unit) <= max_units:
        return text
    keep = max_units - count_units(ellipsis, unit)
    reversed_text = text[::-1]
    start = len(text) - prefix_within(reversed_text, keep, unit)
    while start < len(text) and grapheme_floor(text, start) != start:
        start += 1
    return ellipsis + text[start:].lstrip()


def _trimmed(text: str, entities: tuple[Entity, ...]) -> Rendered:
    """Strip outer whitespace (the platform would, and then see "not modified") and clip entities."""
    stripped = text.strip()
    if not entities:
        return Rendered(stripped, "plain")
    shift = count_units(text[: len(text) - len(text.lstrip())], "utf16")
    size = count_units(stripped, "utf16")
    clipped = []
    for entity in entities:
        start = max(entity.offset - shift, 0)
        stop = min(entity.offset + entity.length - shift, size)
        if stop > start:
            clipped.append(Entity(entity.type, start, stop - start, entity.url, entity.language))
    clipped.sort(key=lambda e: (e.offset, -e.length, e.type))
    return Rendered(stripped, "entities", tuple(clipped)) if clipped else Rendered(stripped, "plain")


# --- links: only absolute http(s) URLs become clickable ----------------------------------------------

_WEB_URL = re.compile(r"https?://[^\s/?#\\]+[^\s\\]*", re.IGNORECASE)


def is_web_link(url: str) -> bool:
    """An absolute http(s) URL with a host: what a link in model output may point to.

    Everything else is shown as text: `tg://user?id=` (a mention that notifies someone), `javascript:`,
    `file:`, `mailto:`, relative paths and fragments (which platforms may also refuse as a link target).
    """
    return _WEB_URL.fullmatch(url.strip()) is not None


# `](` not followed by an http(s) URL: the middle of a masked link (`[text](url)`) to somewhere else.
_LINK_NOT_WEB = re.compile(r"\]\((?![ \t]*<?https?://)", re.IGNORECASE)


def neutralize_links(text: str, code: list[tuple[int, int]] | None = None) -> str:
    """Markdown in which only http(s) masked links remain: every other `](` becomes `]\\(`.

    The masked-link rule needs `](` literally, so the backslash breaks the link and the platform shows
    the text as written (the backslash itself is hidden). `code` spans (sorted) are left alone; without
    them (a live preview, which must not parse) every such `](` is escaped. One C-speed substitution per
    stretch between code spans, no backtracking.
    """
    if not code:
        return _LINK_NOT_WEB.sub(_ESCAPED_LINK, text)
    out: list[str] = []
    position = 0
    for start, end in code:
        out.append(_LINK_NOT_WEB.sub(_ESCAPED_LINK, text[position:start]))
        out.append(text[start:end])
        position = end
    out.append(_LINK_NOT_WEB.sub(_ESCAPED_LINK, text[position:]))
    return "".join(out)


_ESCAPED_LINK = "]\\\\("  # the replacement template for "]\\(" (re.sub reads backslashes)


def _code_spans(text: str) -> list[tuple[int, int]]:
    """Code spans and code blocks of `text` (str indices, sorted): where a `](` is only code."""
    spans: list[tuple[int, int]] = []
    block_start = -1
    for event, span in events_with_range(text):
        if isinstance(event, str):
            continue
        key, value = next(iter(event.items()))
        if key == "Code":
            spans.append((span["start"], span["end"]))
        elif key == "Start" and not isinstance(value, str) and "CodeBlock" in value:
            block_start = span["start"]
        elif key == "End" and value == "CodeBlock" and block_start >= 0:
            spans.append((block_start, span["end"]))
            block_start = -1
    if not text.isascii():
        to_char = byte_offsets(text)
        spans = [(to_char(start), to_char(end)) for start, end in spans]
    return spans


# --- the "markdown" dialect -------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\*_~`|>#\-\[\]()<])")
_FENCE_LINE = re.compile(r"(?m)^ {0,3}(`{3,}|~{3,})([^\n]*)$")


def escape_markdown(text: str) -> str:
    """Text that the "markdown" dialect shows literally (a backslash before every Markdown character)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def open_fence(text: str) -> str:
    """The fence of a code block `text` leaves open ("" if none): a cheap line scan, no parse."""
    opened = ""
    for match in _FENCE_LINE.finditer(text):
        fence, info = match.groups()
        if not opened:
            if not (fence[0] == "`" and "`" in info):
                opened = fence
        elif fence[0] == opened[0] and len(fence) >= len(opened) and not info.strip():
            opened = ""
    return opened


_SUBTEXT = re.compile(r"(?m)^-# ")
_SPOILER = re.compile(r"(?<!\\)\|\|")
_BLOCKS = frozenset(
    {"Paragraph", "Heading", "CodeBlock", "Item", "List", "BlockQuote", "TableRow", "TableHead", "HtmlBlock"}
)


def visible_text(rendered: Rendered) -> str:
    """What a reader sees of a message, formatting removed (the "markdown" dialect is parsed)."""
    if rendered.markup != "markdown":
        return rendered.text
    source = _SPOILER.sub("", _SUBTEXT.sub("", rendered.text))
    out: list[str] = []
    for event in events(source):
        if isinstance(event, str):
            out.append("\n")
            continue
        key, value = next(iter(event.items()))
        if key in ("Text", "Code", "InlineMath", "DisplayMath"):
            out.append(value)
        elif key in ("Start", "End"):
            kind = value if isinstance(value, str) else next(iter(value))
            if kind in _BLOCKS:
                out.append("\n")
            elif key == "End" and kind == "TableCell":
                out.append(" ")
    return "".join(out).strip()


# --- images inside the text ------------------------------------------------------------------------


class ImageFilter:
    """Drops `![alt](data:...)` images and bare `data:image/...` URLs from streamed text.

    Holds back a tail that may still become one, so no base64 ever reaches a chat. `feed` and `flush`
    together give the same text as `strip_images` on the whole, whatever the chunking. Each `feed` costs
    time linear in the held tail (at most `_HOLD_MAX` characters) plus the new text: starts are found by
    `_find_start`, which looks at each character a bounded number of times, never by a backtracking regex.
    """

    _HOLD_MAX = 320
    _ALT_MAX = 300
    _BARE = "data:image/"

    def __init__(self) -> None:
        self._held = ""
        self._skipping: Literal["", "markdown", "bare"] = ""

    def feed(self, text: str) -> str:
        buffer, out = self._held + text, list[str]()
        self._held = ""
        opening, bare = _NextMatch(_DATA_DESTINATION, buffer), _NextMatch(_BARE_START, buffer)
        position = 0
        while position < len(buffer):
            if self._skipping:
                if self._skipping == "markdown":
                    end = buffer.find(")", position)
                    end = end + 1 if end >= 0 else -1
                else:
                    end = _search_end(self._BARE_END, buffer, position)
                if end < 0:
                    return "".join(out)  # still inside the URL: drop what came
                position, self._skipping = end, ""
                continue
            found = _find_start(buffer, position, opening, bare)
            if found is not None:
                start, end, kind = found
                out.append(buffer[position:start])
                position, self._skipping = end, kind
                continue
            keep = self._partial_start(buffer, max(position, len(buffer) - self._HOLD_MAX))
            out.append(buffer[position:keep])
            self._held = buffer[keep:]
            break
        return "".join(out)

    def flush(self) -> str:
        held, self._held, self._skipping = ("" if self._skipping else self._held), "", ""
        return held

    _BARE_END = re.compile(r"[\s)]")
    _DEST_PREFIX = re.compile(r"(?:\(\s{0,4}<?(?:d(?:a(?:t(?:a)?)?)?)?)?")

    def _partial_start(self, buffer: str, low: int) -> int:
        """Where a tail that may still become an image starts (len(buffer) if none), looking from `low`."""
        size = len(buffer)
        best = size
        for length in range(len(self._BARE) - 1, 0, -1):  # "d", "da", ... "data:imag" at the very end
            if size - length >= low and buffer.endswith(self._BARE[:length]):
                best = size - length
                break
        if buffer.endswith("!") and size - 1 >= low:
            best = min(best, size - 1)
        start = buffer.find("![", low)
        while 0 <= start < best:
            close = _ALT_END.search(buffer, start + 2)
            if close is None:
                if size - start - 2 <= self._ALT_MAX:
                    return start
                start = buffer.find("![", max(start + 1, size - self._ALT_MAX - 2))
                continue
            rest = buffer[close.start() + 1 :]
            if (
                close.group() == "]"
                and close.start() - start - 2 <= self._ALT_MAX
                and len(rest) <= 10
                and self._DEST_PREFIX.fullmatch(rest)
            ):
                return start
            start = buffer.find("![", close.start() + 1)
        return best


_ALT_END = re.compile(r"[\]\n]")
_BARE_START = re.compile(r"data:image/")
_DATA_DESTINATION = re.compile(r"\]\(\s*<?data:")


class _NextMatch:
    """The next match of a pattern at or after a position, remembered: asked again for a position up to
    that match (positions only grow), it answers without searching, so no text is searched twice."""

    __slots__ = ("_after", "_found", "_pattern", "_text")

    def __init__(self, pattern: re.Pattern[str], text: str) -> None:
        self._pattern, self._text = pattern, text
        self._after, self._found = -1, -1

    def __call__(self, position: int) -> int:
        if 0 <= self._after <= position and (self._found == -1 or position <= self._found):
            return self._found
        match = self._pattern.search(self._text, position)
        self._after, self._found = position, match.start() if match else -1
        return self._found


def _find_start(
    text: str, position: int, opening: _NextMatch, bare: _NextMatch
) -> tuple[int, int, Literal["markdown", "bare"]] | None:
    """The leftmost `![alt](data:` or `data:image/` at or after `position`: (start, end, kind), or None.

    Read from the middle out: `opening` finds each `](` that opens a data: URL (a C-speed search), and the
    `![` that goes with it is the first after the last `]` or newline before it. Each stretch of text is
    searched a bounded number of times, however many `![` or `](` it holds.
    """
    bare_at = bare(position)
    limit = len(text) if bare_at < 0 else bare_at  # an image must start before it to come first
    floor = position - 1
    while floor + 1 < limit and (close := opening(floor + 1)) >= 0:
        floor = max(floor, text.rfind("]", floor + 1, close), text.rfind("\n", floor + 1, close))
        start = text.find("![", floor + 1, min(close, limit))
        if start >= 0:
            match = _DATA_DESTINATION.match(text, close)
            assert match is not None  # `opening` found it
            return start, match.end(), "markdown"
        floor = close
    if bare_at >= 0:
        return bare_at, bare_at + len(ImageFilter._BARE), "bare"
    return None


def _search_end(pattern: re.Pattern[str], text: str, position: int = 0) -> int:
    match = pattern.search(text, position)
    return match.start() if match else -1


def strip_images(text: str) -> str:
    """`text` without embedded data-URL images (and with lone surrogates replaced)."""
    filtered = ImageFilter()
    return clean_surrogates(filtered.feed(text) + filtered.flush())


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_surrogates(text: str) -> str:
    """`text` with lone surrogates (from broken JSON escapes) replaced, so every encoder accepts it."""
    if _SURROGATE.search(text):
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
