"""core/documents.py: text decided by content, PDFs within a page cap and a deadline, labelled blocks that
their text cannot close, the per-turn character budget, folding old documents, all linear on hostile input."""

from __future__ import annotations

import asyncio
import codecs
import io
import time
from collections.abc import Callable

import pytest

from core import Document, InputError, configure_logging
from core.context import HistoryItem, build_context, estimate_tokens
from core.documents import (
    DocumentLimits,
    DocumentReader,
    ReadDocuments,
    decode_text,
    document_name,
    labelled,
    read_pdf,
    without_documents,
)
from tests.e2e.support import restored_logging
from tests.fakes.pdfs import damaged_pdf, pdf_bytes
from tests.loop_steps import longest_loop_step

LIMITS = DocumentLimits(max_chars=50_000, max_bytes=20_000_000, pdf_max_pages=100, pdf_timeout_seconds=20.0)


def read(
    documents: list[Document], limits: DocumentLimits = LIMITS, clock: Callable[[], float] = time.monotonic
) -> ReadDocuments:
    return asyncio.run(DocumentReader(limits, clock=clock).read(documents))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"plain ascii\n", "plain ascii\n"),
        ("naïve café ✓".encode(), "naïve café ✓"),
        (codecs.BOM_UTF8 + b"with bom", "with bom"),
        ("utf-16 ✓".encode("utf-16"), "utf-16 ✓"),
        ("utf-16 be".encode("utf-16-be").join([codecs.BOM_UTF16_BE, b""]), "utf-16 be"),
        (b"\x1b[31mred log line\x1b[0m\tcol\r\n", "\x1b[31mred log line\x1b[0m\tcol\r\n"),
    ],
)
def test_text_is_decided_by_content(data: bytes, expected: str) -> None:
    assert decode_text(data, 1000) == (expected, False)


@pytest.mark.parametrize(
    "data",
    [
        b"text with a NUL\x00inside",
        b"\xff\xd8\xff\xe0 jpeg-ish bytes",  # not UTF-8
        b"mostly text" + b"\x01\x02\x03\x04",  # too many control characters
        bytes(range(128)),
    ],
)
def test_binary_content_is_not_text_whatever_the_name(data: bytes) -> None:
    assert decode_text(data, 1000) is None
    with pytest.raises(InputError) as refused:
        read([Document("notes.txt", data)])
    assert refused.value.user_message == "I can read text files and PDFs; notes.txt is neither."


def test_decoding_reads_only_a_prefix_and_says_there_was_more() -> None:
    text, cut = decode_text(b"a" * 10_000_000 + b"\xff", 100) or ("", False)  # invalid only past the prefix
    assert (text, cut) == ("a" * 100, True)
    assert decode_text("é".encode() * 101, 100) == ("é" * 100, True)
    assert decode_text("é".encode() * 100, 100) == ("é" * 100, False)


def test_a_label_fence_is_longer_than_any_backtick_run_in_the_text() -> None:
    block = labelled("x.md", "```\ninner\n````\n")
    assert block == "[file: x.md]\n`````\n```\ninner\n````\n\n`````"
    assert without_documents(block + "\n\nquestion") == "[file x.md: not repeated]\n\nquestion"


def test_names_are_one_safe_line() -> None:
    assert document_name("evil]\n[file: x.txt]`") == "evil___file: x.txt__"
    assert (
        document_name("\u202e\u200b") == "__" and document_name("  ") == "file" and len(document_name("a" * 500)) == 120
    )


def test_the_character_budget_is_shared_by_the_files_of_a_turn() -> None:
    limits = DocumentLimits(max_chars=10, max_bytes=10_000, pdf_max_pages=5, pdf_timeout_seconds=5)
    found = read([Document("a.txt", b"12345678"), Document("b.txt", b"abcdef"), Document("c.txt", b"zz")], limits)
    assert found.blocks[0] == "[file: a.txt]\n```\n12345678\n```"
    assert found.blocks[1] == "[file: b.txt] (cut: only the beginning was read)\n```\nab\n```"
    assert found.notes[0] == "Only the first 2 characters of b.txt were read."
    assert found.notes[1].startswith("c.txt was not read")
    assert found.turn_text("").endswith("Summarise these files.")


def test_too_many_bytes_together_are_refused() -> None:
    limits = DocumentLimits(max_chars=10, max_bytes=2048, pdf_max_pages=5, pdf_timeout_seconds=5)
    with pytest.raises(InputError, match="document bytes"):
        read([Document("a.txt", b"a" * 1500), Document("b.txt", b"b" * 1500)], limits)


def test_pdf_pages_over_the_cap_are_left_out_with_a_note() -> None:
    found = read([Document("p.pdf", pdf_bytes([f"page {i}" for i in range(5)]))], DocumentLimits(1000, 10**6, 2, 5))
    assert "page 1" in found.blocks[0] and "page 2" not in found.blocks[0]
    assert found.notes == ("Only the first 2 pages of p.pdf were read.",)


def test_a_pdf_stops_at_its_deadline_between_operators() -> None:
    ticks = iter(range(1000))
    data = pdf_bytes(["\n".join(f"line {i}" for i in range(200))])
    with pytest.raises(Exception, match="slow"):
        read_pdf(data, max_chars=10**6, max_pages=10, deadline=50, clock=lambda: next(ticks))
    reader = DocumentReader(DocumentLimits(10**6, 10**6, 10, 5.0), clock=iter(range(0, 10**6, 3)).__next__)
    with pytest.raises(InputError) as refused:
        asyncio.run(reader.read([Document("slow.pdf", data)]))
    assert refused.value.user_message == "slow.pdf took too long to read."


def test_reading_a_large_pdf_never_holds_the_event_loop() -> None:
    data = pdf_bytes(["\n".join(f"line {i} of page {page}" for i in range(40)) for page in range(100)])

    async def main() -> tuple[str, float]:
        with longest_loop_step() as longest:
            found = await DocumentReader(DocumentLimits(10**6, 10**6, 100, 20.0)).read([Document("big.pdf", data)])
        return found.blocks[0], longest.seconds

    block, longest = asyncio.run(main())
    assert "line 39 of page 99" in block
    assert longest < 0.05, f"one loop step took {longest * 1000:.0f} ms"


def test_folding_is_linear_on_hostile_text() -> None:
    hostile = ("[file: a]\n```\n" * 100_000) + "````\n" * 100_000
    started = time.perf_counter()
    folded = without_documents(hostile)
    assert time.perf_counter() - started < 2.0
    assert folded.count("[file a: not repeated]") == 50_000  # each label's fence closed by the next one
    assert without_documents("[file: a]\n```\nx\n```\n[file: b]\n```\ny\n```") == (
        "[file a: not repeated]\n[file b: not repeated]"
    )


def document_turn(name: str, size: int, question: str) -> HistoryItem:
    return HistoryItem("user", labelled(name, name[0] * size) + "\n\n" + question, author="ann")


def test_older_documents_are_folded_before_newer_ones_and_before_turns_are_dropped() -> None:
    history = [
        document_turn("old.txt", 4000, "first?"),
        HistoryItem("assistant", "first answer"),
        document_turn("new.txt", 4000, "second?"),
        HistoryItem("assistant", "second answer"),
        HistoryItem("user", "third?", author="ann"),
    ]
    budget = 1500  # room for one 4,000-character document (about 1,000 tokens), not two
    messages = build_context(system_prompt="sys", history=history, budget_tokens=budget, image_turns=2)
    contents = [m["content"] for m in messages]
    assert contents[1] == "[file old.txt: not repeated]\n\nfirst?"  # every turn stays
    assert contents[3].startswith("[file: new.txt]\n```\n" + "n" * 4000)
    assert contents[2:] == ["first answer", history[2].text, "second answer", "third?"]
    assert sum(estimate_tokens(str(c)) for c in contents) <= budget
    tight = build_context(system_prompt="sys", history=history, budget_tokens=300, image_turns=2)
    assert [m["content"] for m in tight][1:] == [
        "[file old.txt: not repeated]\n\nfirst?", "first answer",
        "[file new.txt: not repeated]\n\nsecond?", "second answer", "third?",
    ]  # fmt: skip


def test_a_damaged_pdf_does_not_fill_the_log() -> None:
    log = io.StringIO()
    with restored_logging():
        configure_logging("INFO", stream=log)
        with pytest.raises(Exception, match="corrupt"):
            read_pdf(damaged_pdf() * 50, max_chars=100, max_pages=5, deadline=10**9, clock=time.monotonic)
    assert "pypdf" not in log.getvalue() and log.getvalue().count("\n") <= 1
