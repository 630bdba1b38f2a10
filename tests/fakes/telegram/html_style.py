"""Telegram's HTML formatting (core.telegram.org/bots/api#html-style) parsed into visible text + entities.

Error texts follow TDLib's, i.e. what the Bot API puts after "Bad Request: can't parse entities: ".
"""

from __future__ import annotations

import html

from .entities import Builder, EntityParseError, Formatted, OpenEntity

_HTML_SIMPLE = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "code": "code", "pre": "pre",
}  # fmt: skip
_HTML_TAGS = frozenset({*_HTML_SIMPLE, "span", "a", "blockquote", "tg-emoji"})
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def parse_html(source: str) -> Formatted:
    """Telegram's HTML subset. Stricter than TDLib in one place: a bare `&` (TDLib keeps it literally)."""
    out = Builder(source)
    stack: list[OpenEntity] = []
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char == "&":
            decoded, i = _html_entity(source, i, out)
            out.add(decoded)
        elif char != "<":
            j = i
            while j < n and source[j] not in "<&":
                j += 1
            out.add(source[i:j])
            i = j
        elif source.startswith("</", i):
            i = _html_end_tag(source, i, out, stack)
        else:
            i = _html_start_tag(source, i, out, stack)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return out.result()


def _html_entity(source: str, i: int, out: Builder) -> tuple[str, int]:
    end = source.find(";", i + 1, i + 12)
    name = source[i + 1 : end] if end != -1 else ""
    if name in _HTML_NAMED:
        return _HTML_NAMED[name], end + 1
    try:
        if name.startswith(("#x", "#X")):
            return chr(int(name[2:], 16)), end + 1
        if name.startswith("#"):
            return chr(int(name[1:])), end + 1
    except (ValueError, OverflowError):
        pass
    raise EntityParseError(f"Character '&' must be escaped as &amp; at byte offset {out.byte_offset(i)}")


def _html_end_tag(source: str, i: int, out: Builder, stack: list[OpenEntity]) -> int:
    close = source.find(">", i)
    if close == -1:
        raise EntityParseError(f"Unclosed end tag at byte offset {out.byte_offset(i)}")
    name = source[i + 2 : close].strip().lower()
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {out.byte_offset(i)}")
    top = stack.pop()
    if name != top.tag:
        raise EntityParseError(
            f'Unmatched end tag at byte offset {out.byte_offset(i)}, expected "</{top.tag}>", found "</{name}>"'
        )
    out.close(top)
    return close + 1


def _html_start_tag(source: str, i: int, out: Builder, stack: list[OpenEntity]) -> int:
    where = out.byte_offset(i)
    j = i + 1
    while j < len(source) and (source[j].isascii() and (source[j].isalnum() or source[j] == "-")):
        j += 1
    name = source[i + 1 : j].lower()
    if name not in _HTML_TAGS:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {where}')
    attrs, j = _html_attributes(source, j, name, where)
    item = OpenEntity(name, _HTML_SIMPLE.get(name, name), out.pos, where)
    if name == "span":
        if attrs.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {where}')
        item.type = "spoiler"
    elif name == "a":
        item.type, item.url = "text_link", attrs.get("href") or None
        item.absorbed = item.url is None
    elif name == "blockquote":
        item.type = "expandable_blockquote" if "expandable" in attrs else "blockquote"
    elif name == "tg-emoji":
        if not attrs.get("emoji-id", "").isdigit():
            raise EntityParseError("Custom emoji entity must contain a valid custom emoji identifier")
        item.type, item.custom_emoji_id = "custom_emoji", attrs["emoji-id"]
    elif name == "code" and stack and stack[-1].tag == "pre" and stack[-1].start == out.pos:
        language = attrs.get("class", "")
        if language.startswith("language-") and len(language) > len("language-"):
            stack[-1].language = language.removeprefix("language-")
        item.absorbed = True
    stack.append(item)
    return j


def _html_attributes(source: str, j: int, tag: str, where: int) -> tuple[dict[str, str], int]:
    attrs: dict[str, str] = {}
    n = len(source)
    while True:
        while j < n and source[j].isspace():
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {where}")
        if source[j] == ">":
            return attrs, j + 1
        k = j
        while k < n and (source[k].isalnum() or source[k] in "-_"):
            k += 1
        if k == j:
            raise EntityParseError(f'Unexpected character in the tag "{tag}" at byte offset {where}')
        name, j = source[j:k].lower(), k
        if j < n and source[j] == "=":
            j += 1
            if j < n and source[j] in "\"'":
                end = source.find(source[j], j + 1)
                if end == -1:
                    raise EntityParseError(f"Unclosed start tag at byte offset {where}")
                raw, j = source[j + 1 : end], end + 1
            else:
                k = j
                while k < n and not source[k].isspace() and source[k] != ">":
                    k += 1
                raw, j = source[j:k], k
            attrs[name] = html.unescape(raw)
        else:
            attrs[name] = ""
