"""Documents on Telegram: text files and PDFs read into the turn, albums of files, refusals before anything
goes upstream, the size cap before download, a stranger's file never fetched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.telegram_harness import BOT_USERNAME, World, telegram_world
from tests.fakes.pdfs import damaged_pdf, encrypted_pdf, pdf_bytes
from tests.fakes.telegram import FakeChat, FakeUser

pytestmark = pytest.mark.e2e


def sent_text(w: World) -> str:
    """The user message of the one chat request the upstream got."""
    [request] = w.up.chat_requests
    content = request.body["messages"][-1]["content"]
    assert isinstance(content, str)
    return content


def send_file(w: World, chat: FakeChat, user: FakeUser, data: bytes, name: str, **fields: object) -> None:
    w.tg.user_sends(chat, user, document=w.tg.add_file(data, file_name=name), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("notes.txt", b"Buy milk.\nCall Bob.\n", "Buy milk.\nCall Bob."),
        ("tool.py", b"def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a + b"),
        ("report.pdf", pdf_bytes(["Quarterly revenue rose 12%.", "Costs fell."]), "Quarterly revenue rose 12%."),
    ],
)
async def test_a_document_is_answered_from_its_text(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    async with telegram_world(tmp_path) as w:
        w.up.add_reply("Read it.")
        user, chat = w.dm("Ann")
        async with w.bot():
            send_file(w, chat, user, data, name, caption="what does it say?")
            await w.said(chat, lambda t: t == "Read it.")
        text = sent_text(w)
        assert text.startswith(f"[file: {name}]\n```\n") and expected in text
        assert text.endswith("\n```\n\nwhat does it say?")


async def test_a_document_without_caption_is_summarised(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        w.up.add_reply("A shopping list.")
        user, chat = w.dm("Ann")
        async with w.bot():
            send_file(w, chat, user, b"milk, eggs", "list.csv")
            await w.said(chat, lambda t: t == "A shopping list.")
        assert sent_text(w) == "[file: list.csv]\n```\nmilk, eggs\n```\n\nSummarise this file."


@pytest.mark.parametrize(
    ("name", "data", "refusal"),
    [
        ("broken.pdf", damaged_pdf(), "broken.pdf could not be read: the PDF is damaged."),
        ("locked.pdf", encrypted_pdf("secret plans"), "locked.pdf is password-protected; send a copy without"),
        ("scan.pdf", pdf_bytes([None]), "scan.pdf has no text to read"),
        ("photo.bin", bytes(range(256)) * 4, "I can read text files and PDFs; photo.bin is neither."),
    ],
)
async def test_an_unreadable_document_is_refused_before_any_upstream_call(
    tmp_path: Path, name: str, data: bytes, refusal: str
) -> None:
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            send_file(w, chat, user, data, name, caption="summarise")
            message = await w.said(chat, lambda t: refusal in t.replace("\\", ""))
            w.tg.user_sends(chat, user, "still there?")
            await w.said(chat, lambda t: t == "Echo: still there?")
        assert "\n" not in message.text.strip()
        [request] = w.up.chat_requests  # only the second message: the file was not sent, nor stored
        assert [m["content"] for m in request.body["messages"] if m["role"] == "user"] == ["still there?"]


async def test_an_album_of_two_files_is_one_turn(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        w.up.add_reply("Both read.")
        user, chat = w.dm("Ann")
        async with w.bot():
            send_file(w, chat, user, b"alpha", "a.txt", caption="compare", media_group_id="files1")
            send_file(w, chat, user, pdf_bytes(["beta"]), "b.pdf", media_group_id="files1")
            await w.said(chat, lambda t: t == "Both read.")
            await w.idle()
        assert sent_text(w) == "[file: a.txt]\n```\nalpha\n```\n\n[file: b.pdf]\n```\nbeta\n```\n\ncompare"
        assert w.texts(chat) == ["Both read."]


async def test_a_document_over_max_document_chars_is_cut_with_a_visible_note(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, max_document_chars=1000) as w:
        w.up.add_reply("Long one.")
        user, chat = w.dm("Ann")
        async with w.bot():
            send_file(w, chat, user, b"x" * 5000, "big.log", caption="any errors?")
            message = await w.said(chat, lambda t: t.startswith("Long one."))
        text = sent_text(w)
        assert "[file: big.log] (cut: only the beginning was read)\n```\n" + "x" * 1000 + "\n```" in text
        assert "x" * 1001 not in text
        assert "Only the first 1,000 characters of big.log were read." in message.text.replace("\\", "")


async def test_an_oversize_document_is_refused_without_download(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, max_document_bytes=2048) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            send_file(w, chat, user, b"y" * 4096, "huge.txt", caption="read this")
            await w.said(chat, lambda t: "too large" in t)
        assert w.tg.downloads == [] and w.tg.calls_of("getFile") == [] and w.up.chat_requests == []


async def test_a_strangers_document_is_never_downloaded(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, allowed_users=("telegram:1",)) as w:
        user, chat = w.dm("Eve")
        async with w.bot():
            send_file(w, chat, user, b"payload", "x.txt", caption="read this")
            await w.said(chat, lambda t: "private" in t)
        assert w.tg.downloads == [] and w.tg.calls_of("getFile") == [] and w.up.chat_requests == []


async def test_an_older_document_is_folded_in_history_before_turns_are_dropped(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, context_budget_tokens=300) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.up.add_reply("Read the old one.")
            send_file(w, chat, user, b"a" * 2000, "old.txt", caption="first")
            await w.said(chat, lambda t: t == "Read the old one.")
            w.up.add_reply("Read the new one.")
            send_file(w, chat, user, b"b" * 600, "new.txt", caption="second")
            await w.said(chat, lambda t: t == "Read the new one.")
        second = [m["content"] for m in w.up.chat_requests[1].body["messages"] if m["role"] == "user"]
        assert second == [
            "[file old.txt: not repeated]\n\nfirst",
            "[file: new.txt]\n```\n" + "b" * 600 + "\n```\n\nsecond",
        ]


async def test_in_a_group_only_a_document_for_the_bot_is_downloaded(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        alice = w.tg.user("Alice")
        group = w.tg.supergroup()
        async with w.bot():
            send_file(w, group, alice, b"minutes of the meeting", "minutes.txt", caption="for the team")
            w.up.add_reply("Noted.")
            send_file(w, group, alice, b"agenda items", "agenda.md", caption=f"@{BOT_USERNAME} anything missing?")
            await w.said(group, lambda t: t == "Noted.")
        assert len(w.tg.downloads) == 1
        assert sent_text(w) == "Alice: [file: agenda.md]\n```\nagenda items\n```\n\nanything missing?"
