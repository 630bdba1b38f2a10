"""Markdown rendered in each markup dialect, plain fallbacks, notes, reasoning, embedded images, visible text.

Pure: imports the stdlib, the entities converter and core.live (pyromark through core.live.split).
"""

from __future__ import annotations

import logging
import re
from typing import Literal

from telegramify_markdown import convert as markdown_to_entities

from core.live.split import count_units, events, grapheme_floor, prefix_within
from core.live.surface import Dialect, Entity, LengthUnit, Rendered

log = logging.getLogger(__name__)

_KEPT_ENTITIES = frozenset(
    {"bold", "italic", "underline", "strikethrough", "spoiler", "code", "pre", "text_link", "blockquote",
     "expandable_blockquote"}
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
        return Rendered(f"{text}\n{fence}" if fence else text, "markdown")
    try:
        text, entities = markdown_to_entities(source)
    except Exception:  # a converter bug must not cost the answer: show it unformatted instead
        log.exception("Markdown to entities failed; sending plain text")
        return Rendered(source.strip(), "plain")
    kept = tuple(
        Entity(e.type, e.offset, e.length, e.url or "", e.language or "")
        for e in entities
        if e.type in _KEPT_ENTITIES
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
    return Rendered(f"{text}\n{fence}" if fence else text, "markdown")


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
    together give the same text as `strip_images` on the whole, whatever the chunking.
    """

    _START = re.compile(r"!\[[^\]\n]*\]\(\s*<?data:|data:image/")
    _PARTIAL = re.compile(
        r"!(?:\[[^\]\n]{0,300}(?:\](?:\(\s{0,4}<?(?:d(?:a(?:t(?:a)?)?)?)?)?)?)?\Z"
        r"|d(?:a(?:t(?:a(?::(?:i(?:m(?:a(?:g(?:e)?)?)?)?)?)?)?)?)?\Z"
    )
    _BARE_END = re.compile(r"[\s)]")

    def __init__(self) -> None:
        self._held = ""
        self._skipping: Literal["", "markdown", "bare"] = ""

    def feed(self, text: str) -> str:
        buffer, out = self._held + text, list[str]()
        self._held = ""
        while buffer:
            if self._skipping:
                if self._skipping == "markdown":
                    end = buffer.find(")")
                    end = end + 1 if end >= 0 else -1
                else:
                    end = _search_end(self._BARE_END, buffer)
                if end < 0:
                    return "".join(out)  # still inside the URL: drop what came
                buffer, self._skipping = buffer[end:], ""
                continue
            match = self._START.search(buffer)
            if match is not None:
                out.append(buffer[: match.start()])
                buffer = buffer[match.end() :]
                self._skipping = "markdown" if match.group().startswith("!") else "bare"
                continue
            partial = self._PARTIAL.search(buffer, max(0, len(buffer) - 320))
            keep = partial.start() if partial else len(buffer)
            out.append(buffer[:keep])
            self._held = buffer[keep:]
            break
        return "".join(out)

    def flush(self) -> str:
        held, self._held, self._skipping = ("" if self._skipping else self._held), "", ""
        return held


def _search_end(pattern: re.Pattern[str], text: str) -> int:
    match = pattern.search(text)
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
