"""Telegram's MarkdownV2 and legacy Markdown (core.telegram.org/bots/api#formatting-options) parsed into
visible text + entities. Error texts follow TDLib's.
"""

from __future__ import annotations

from .entities import Builder, EntityParseError, Formatted, OpenEntity

_RESERVED_V2 = frozenset("_*[]()~`>#+-=|{}.!")
_V2_OPENERS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler",
               "[": "text_link", "![": "custom_emoji", "`": "code", "```": "pre"}  # fmt: skip
_V2_CLOSERS = {"bold": "*", "italic": "_", "underline": "__", "strikethrough": "~", "spoiler": "||",
               "text_link": "]", "custom_emoji": "]", "code": "`", "pre": "```"}  # fmt: skip
_V2_NAMES = {"bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
             "spoiler": "Spoiler", "text_link": "TextUrl", "custom_emoji": "CustomEmoji", "code": "Code",
             "pre": "Pre", "blockquote": "BlockQuote", "expandable_blockquote": "ExpandableBlockQuote"}  # fmt: skip


def _is_escapable(source: str, i: int) -> bool:
    return source[i] == "\\" and i + 1 < len(source) and 1 <= ord(source[i + 1]) <= 126


def _v2_token(source: str, i: int) -> str:
    for token in ("```", "__", "||", "!["):
        if source.startswith(token, i):
            return token
    return source[i]


class _MarkdownV2:
    """One parse: a stack of open inline entities plus the (outermost) blockquote of the current lines."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.out = Builder(source)
        self.stack: list[OpenEntity] = []
        self.quote: OpenEntity | None = None
        self.quote_ends_at_eol = False

    def error_unclosed(self, item: OpenEntity) -> EntityParseError:
        return EntityParseError(f"Can't find end of {_V2_NAMES[item.type]} entity at byte offset {item.byte_offset}")

    def run(self) -> Formatted:
        src, i = self.src, 0
        while i < len(src):
            if (i == 0 or src[i - 1] == "\n") and not self._in_code():
                i = self._line_start(i)
                if i >= len(src):
                    break
            i = self._step(i)
        if self.stack:
            raise self.error_unclosed(self.stack[-1])
        if self.quote is not None:
            self.out.close(self.quote)
        return self.out.result()

    def _in_code(self) -> bool:
        return bool(self.stack) and self.stack[-1].type in ("code", "pre")

    def _line_start(self, i: int) -> int:
        src = self.src
        expandable = src.startswith("**>", i)
        if expandable or src.startswith(">", i):
            if self.quote is None:
                if self.stack:
                    raise self.error_unclosed(self.stack[-1])
                kind = "expandable_blockquote" if expandable else "blockquote"
                self.quote = OpenEntity(">", kind, self.out.pos, self.out.byte_offset(i))
            return i + (3 if expandable else 1)
        if self.quote is not None and i > 0:
            self._end_quote(excluding_newline=True)
        return i

    def _end_quote(self, *, excluding_newline: bool) -> None:
        assert self.quote is not None
        if self.stack:
            raise self.error_unclosed(self.stack[-1])
        if excluding_newline:
            self.out.pos -= 1  # the quote ends before the line break already emitted
            self.out.close(self.quote)
            self.out.pos += 1
        else:
            self.out.close(self.quote)
        self.quote, self.quote_ends_at_eol = None, False

    def _step(self, i: int) -> int:
        src, out = self.src, self.out
        if _is_escapable(src, i):
            out.add(src[i + 1])
            return i + 2
        if self._in_code():
            top = self.stack[-1]
            if src.startswith(_V2_CLOSERS[top.type], i):
                self.stack.pop()
                out.close(top)
                return i + len(_V2_CLOSERS[top.type])
            out.add(src[i])
            return i + 1
        if self.quote_ends_at_eol and src[i] == "\n":
            self._end_quote(excluding_newline=False)
        if src[i] not in _RESERVED_V2:
            out.add(src[i])
            return i + 1
        token = _v2_token(src, i)
        # Tokens are greedy ("__" is underline even when an italic is open), as the Bot API docs warn.
        if self.stack and token == _V2_CLOSERS[self.stack[-1].type]:
            return self._close(i, len(token))
        in_expandable = self.quote is not None and self.quote.type == "expandable_blockquote"
        if token == "||" and in_expandable and (i + 2 == len(src) or src[i + 2] == "\n"):
            self.quote_ends_at_eol = True
            return i + 2
        if token in _V2_OPENERS:
            return self._open(i, token)
        raise EntityParseError(f"Character '{src[i]}' is reserved and must be escaped with the preceding '\\'")

    def _open(self, i: int, token: str) -> int:
        item = OpenEntity(token, _V2_OPENERS[token], self.out.pos, self.out.byte_offset(i))
        i += len(token)
        if token == "```":
            j = i
            while j < len(self.src) and not self.src[j].isspace() and self.src[j] != "`":
                j += 1
            if j > i and j < len(self.src) and self.src[j] != "`":
                item.language, i = self.src[i:j], j
            if self.src.startswith("\n", i):
                i += 1
        self.stack.append(item)
        return i

    def _close(self, i: int, width: int) -> int:
        item = self.stack.pop()
        i += width
        if item.type in ("text_link", "custom_emoji"):
            if not self.src.startswith("(", i):
                if item.type == "custom_emoji":
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                item.absorbed = True
            else:
                url, i = self._url(i + 1, item)
                if item.type == "custom_emoji":
                    if not url.startswith("tg://emoji?id=") or not url[len("tg://emoji?id=") :].isdigit():
                        raise EntityParseError("Custom emoji URL must have an emoji identifier")
                    item.custom_emoji_id = url[len("tg://emoji?id=") :]
                else:
                    item.url = url
        self.out.close(item)
        return i

    def _url(self, i: int, item: OpenEntity) -> tuple[str, int]:
        chars: list[str] = []
        while i < len(self.src) and self.src[i] != ")":
            if _is_escapable(self.src, i):
                i += 1
            chars.append(self.src[i])
            i += 1
        if i >= len(self.src):
            raise EntityParseError(f"Can't find end of a URL at byte offset {item.byte_offset}")
        return "".join(chars), i + 1


def parse_markdown_v2(source: str) -> Formatted:
    """MarkdownV2: every reserved character outside an entity must be escaped with `\\`."""
    return _MarkdownV2(source).run()


# ------------------------------------------------------------- legacy Markdown (bots/api#markdown-style)


def parse_markdown(source: str) -> Formatted:
    """Legacy Markdown: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out = Builder(source)
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char == "\\" and i + 1 < n and source[i + 1] in "_*`[":
            out.add(source[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.add(char)
            i += 1
            continue
        where = out.byte_offset(i)
        token = "```" if source.startswith("```", i) else char
        closer = "]" if token == "[" else token
        end = source.find(closer, i + len(token))
        if end == -1:
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {where}")
        body = source[i + len(token) : end]
        kind = {"*": "bold", "_": "italic", "`": "code", "```": "pre", "[": "text_link"}[token]
        item = OpenEntity(token, kind, out.pos, where)
        i = end + len(closer)
        if token == "```":
            first, newline, rest = body.partition("\n")
            if newline and first and not any(c.isspace() for c in first):
                item.language, body = first, rest
        if token == "[":
            url_end = source.find(")", i) if source.startswith("(", i) else -1
            item.url = source[i + 1 : url_end] if url_end != -1 else None
            item.absorbed = item.url is None
            i = url_end + 1 if url_end != -1 else i
        out.add(body)
        out.close(item)
    return out.result()
