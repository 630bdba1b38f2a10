"""Documents users send: text files and PDFs become labelled text parts of their turn; older ones fold away.

Whether a file is text is decided by its bytes, not its name; PDFs are read with pypdf in a worker thread,
within a page cap and a deadline checked between drawing operators. Every pass is linear and bounded.
Imports core values, errors and texts only; no platform, no store.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import logging
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core import texts as words
from core.conversation import Document
from core.errors import InputError

log = logging.getLogger(__name__)

LABEL_PREFIX = "[file: "
PLACEHOLDER = "[file {name}: not repeated]"
SUMMARISE_ONE = "Summarise this file."
SUMMARISE_MANY = "Summarise these files."
PDF_MAGIC = b"%PDF-"
PDF_MAGIC_WINDOW = 1024  # readers accept the header anywhere in the first 1024 bytes (PDF 1.7, Annex H.3)
NAME_MAX_CHARS = 120
SNIFF_CHARS = 4096  # decoded even when the turn's character budget is spent: a binary file is still refused
# Tabs, line ends, form feeds and ESC (coloured logs) are text; other C0 controls and DEL count against it.
_CONTROLS = {code: None for code in [*range(0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F]}
MAX_CONTROL_SHARE = 0.02
PDF_TIMEOUT_SLACK_SECONDS = 1.0
PDF_READERS = 2  # PDFs parsed at once per process: a flood of hostile PDFs holds at most this many threads


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    max_chars: int  # all documents of one turn together
    max_bytes: int
    pdf_max_pages: int
    pdf_timeout_seconds: float


@dataclass(frozen=True, slots=True)
class ReadDocuments:
    """The documents of one turn as text blocks for the model, and the notes the user sees with the answer."""

    blocks: tuple[str, ...]
    notes: tuple[str, ...]

    def turn_text(self, question: str) -> str:
        """The stored and sent text of the turn: the documents first, then the question (or a request to
        summarise them when the message had no text)."""
        ask = question.strip() or (SUMMARISE_ONE if len(self.blocks) == 1 else SUMMARISE_MANY)
        return "\n\n".join([*self.blocks, ask])


@dataclass(frozen=True, slots=True)
class _Text:
    text: str
    cut_chars: bool = False
    cut_pages: int = 0  # the page cap, when pages were left out


def check_document_bytes(total: int, max_bytes: int) -> None:
    """Refuse the files of one message over MAX_DOCUMENT_BYTES together; adapters call it with the sizes a
    platform declares, before downloading anything."""
    if total > max_bytes:
        raise InputError(
            f"{total} document bytes in one turn, over {max_bytes}", user_message=words.document_too_large(max_bytes)
        )


def document_name(raw: str) -> str:
    """A file name safe to put in a label and a chat line: one line, no brackets or backticks, bounded."""
    kept = "".join(
        "_" if char in "[]`" or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") else char
        for char in raw[:NAME_MAX_CHARS]
    ).strip()
    return kept or "file"


class DocumentReader:
    """Reads the documents of a turn; one per Assistant (it bounds the PDF threads of the process)."""

    def __init__(self, limits: DocumentLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._pdf_threads = asyncio.Semaphore(PDF_READERS)

    async def read(self, documents: Sequence[Document]) -> ReadDocuments:
        """Text blocks within MAX_DOCUMENT_CHARS in all, or InputError naming the first file refused
        (binary, encrypted, damaged or image-only PDF, too slow): then nothing of the turn goes upstream."""
        limits = self._limits
        check_document_bytes(sum(len(document.data) for document in documents), limits.max_bytes)
        blocks: list[str] = []
        notes: list[str] = []
        remaining = limits.max_chars
        for document in documents:
            name = document_name(document.name)
            found = await self._text_of(document.data, name, remaining)
            text = found.text[:remaining]
            remaining -= len(text)
            cut = found.cut_chars or len(text) < len(found.text)
            if cut:
                notes.append(words.document_cut(name, len(text)))
            elif found.cut_pages:
                notes.append(words.document_pages_cut(name, found.cut_pages))
            blocks.append(labelled(name, text, cut=cut))
        return ReadDocuments(tuple(blocks), tuple(notes))

    async def _text_of(self, data: bytes, name: str, remaining: int) -> _Text:
        if PDF_MAGIC in data[:PDF_MAGIC_WINDOW]:
            return await self._pdf_text(data, name, remaining)
        decoded = await asyncio.to_thread(decode_text, data, max(remaining, SNIFF_CHARS))
        if decoded is None:
            raise InputError("not a text file", user_message=words.document_unreadable(name))
        text, cut = decoded
        return _Text(text, cut_chars=cut)

    async def _pdf_text(self, data: bytes, name: str, remaining: int) -> _Text:
        limits = self._limits
        await self._pdf_threads.acquire()
        deadline = self._clock() + limits.pdf_timeout_seconds
        work = asyncio.ensure_future(
            asyncio.to_thread(
                read_pdf, data, max_chars=max(remaining, 1), max_pages=limits.pdf_max_pages,
                deadline=deadline, clock=self._clock,
            )
        )  # fmt: skip
        work.add_done_callback(self._pdf_done)  # the slot is free when the thread ends, not when we stop waiting
        try:
            # The thread stops itself at the deadline (checked between operators); this timeout is the
            # backstop should one pypdf call run long: the user gets the answer, the thread ends on its own.
            async with asyncio.timeout(limits.pdf_timeout_seconds + PDF_TIMEOUT_SLACK_SECONDS):
                return await asyncio.shield(work)
        except _PdfRefused as exc:
            raise InputError(f"pdf refused: {exc.kind}", user_message=_PDF_REFUSALS[exc.kind](name)) from None
        except TimeoutError:
            raise InputError("pdf timed out", user_message=words.pdf_too_slow(name)) from None

    def _pdf_done(self, work: asyncio.Future[_Text]) -> None:
        self._pdf_threads.release()
        if not work.cancelled():
            work.exception()  # retrieved: a result nobody waits for any more is not an error to log


def decode_text(data: bytes, max_chars: int) -> tuple[str, bool] | None:
    """The first `max_chars` characters of a text file and whether there was more; None when `data` is not
    text: not UTF-8 (UTF-16 and UTF-8 with a byte order mark also count), a NUL, or too many control
    characters. Reads at most 4 bytes a character of it, so the work is bounded by `max_chars`."""
    if data.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8", data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, body = "utf-16", data  # the codec reads the byte order from the mark
    else:
        encoding, body = "utf-8", data
    prefix = body[: 4 * (max_chars + 1)]  # a character is at most 4 bytes in both: enough for max_chars + 1
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(prefix, final=len(prefix) == len(body))
    except UnicodeDecodeError:
        return None
    sample = text[: 4 * max_chars]
    controls = len(sample) - len(sample.translate(_CONTROLS))
    if "\x00" in sample or controls > MAX_CONTROL_SHARE * len(sample):
        return None
    return text[:max_chars], len(text) > max_chars


def labelled(name: str, text: str, *, cut: bool = False) -> str:
    """One document as the model reads it: a label line, then the text in a fence longer than any run of
    backticks inside it (so the text cannot close it early)."""
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    label = f"{LABEL_PREFIX}{name}]" + (" (cut: only the beginning was read)" if cut else "")
    return f"{label}\n{fence}\n{text}\n{fence}"


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    index = text.find("`")
    while index != -1:  # C-speed scans between backticks: linear in the text
        end = index
        while end < len(text) and text[end] == "`":
            end += 1
        run = end - index
        longest = max(longest, run)
        index = text.find("`", end)
    return longest


def has_documents(text: str) -> bool:
    return LABEL_PREFIX in text


def without_documents(text: str) -> str:
    """`text` with each labelled document block replaced by "[file NAME: not repeated]" (for older turns).

    One pass over the lines: a fence's closing line is looked up in a per-fence list of positions with a
    cursor that only moves forward, so hostile text full of labels and fences stays linear.
    """
    lines = text.split("\n")
    fences: dict[str, list[int]] = {}
    for index, line in enumerate(lines):
        if len(line) >= 3 and line.strip("`") == "":
            fences.setdefault(line, []).append(index)
    cursors = dict.fromkeys(fences, 0)
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        closing = _closing_fence(lines, index, fences, cursors) if line.startswith(LABEL_PREFIX) else None
        if closing is None:
            out.append(line)
            index += 1
            continue
        name = line[len(LABEL_PREFIX) :].partition("]")[0]
        out.append(PLACEHOLDER.format(name=name))
        index = closing + 1
    return "\n".join(out)


def _closing_fence(lines: list[str], label: int, fences: dict[str, list[int]], cursors: dict[str, int]) -> int | None:
    if "]" not in lines[label] or label + 1 >= len(lines) or lines[label + 1] not in fences:
        return None
    fence = lines[label + 1]
    positions, cursor = fences[fence], cursors[fence]
    while cursor < len(positions) and positions[cursor] <= label + 1:
        cursor += 1
    cursors[fence] = cursor
    return positions[cursor] if cursor < len(positions) else None


class _PdfRefused(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


_PDF_REFUSALS: dict[str, Callable[[str], str]] = {
    "encrypted": words.pdf_encrypted,
    "corrupt": words.pdf_corrupt,
    "no_text": words.pdf_without_text,
    "slow": words.pdf_too_slow,
}


def read_pdf(data: bytes, *, max_chars: int, max_pages: int, deadline: float, clock: Callable[[], float]) -> _Text:
    """The text of a PDF's first `max_pages` pages, up to `max_chars` (CPU work: call it in a thread).

    Raises _PdfRefused("encrypted" | "corrupt" | "no_text" | "slow"); `clock() > deadline` is checked before
    each page and each drawing operator, so a hostile page stops within one operator of the deadline.
    """
    from pypdf import PasswordType, PdfReader  # imported where used: only a PDF pays for loading pypdf

    def on_operator(*_: Any) -> None:
        if clock() > deadline:
            raise _PdfRefused("slow")

    encrypted = False
    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
        if encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise _PdfRefused("encrypted")
        pages = reader.pages
        count = len(pages)
        found: list[str] = []
        chars = 0
        for index in range(min(count, max_pages)):
            on_operator()
            page_text = pages[index].extract_text(visitor_operand_before=on_operator)
            found.append(page_text)
            chars += len(page_text)
            if chars > max_chars:
                break
    except _PdfRefused:
        raise
    except Exception as exc:  # pypdf may raise anything on hostile bytes (its own errors, KeyError, RecursionError)
        log.info("pdf not readable: %s", type(exc).__name__)
        raise _PdfRefused("encrypted" if encrypted else "corrupt") from None  # AES without `cryptography` too
    # PostgreSQL text holds no NUL, and JSON no lone surrogate: odd fonts can give either.
    text = "\n\n".join(found).replace("\x00", "").encode("utf-8", "replace").decode().strip()
    if not text:
        raise _PdfRefused("no_text")
    return _Text(text[:max_chars], cut_chars=len(text) > max_chars, cut_pages=max_pages if count > max_pages else 0)
