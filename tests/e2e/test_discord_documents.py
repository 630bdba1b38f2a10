"""Documents on Discord: attached text files and PDFs read into the turn, several in one message, refusals
before anything goes upstream, the size cap before download, a stranger's attachment never fetched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.database import rows
from tests.e2e.discord_harness import World, bot_says, discord_settings, running_bot
from tests.fakes.discord import FakeDiscord, Upload
from tests.fakes.pdfs import damaged_pdf, encrypted_pdf, pdf_bytes
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


def sent_text(upstream: FakeUpstream) -> str:
    [request] = upstream.chat_requests
    content = request.body["messages"][-1]["content"]
    assert isinstance(content, str)
    return content


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("notes.txt", b"Buy milk.\nCall Bob.\n", "Buy milk.\nCall Bob."),
        ("tool.py", b"def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a + b"),
        ("report.pdf", pdf_bytes(["Quarterly revenue rose 12%.", "Costs fell."]), "Quarterly revenue rose 12%."),
    ],
)
async def test_an_attached_document_is_answered_from_its_text(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path, name: str, data: bytes, expected: str
) -> None:
    upstream.add_reply("Read it.")
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(
            world.channel, world.alice, "what does it say?", mentions_bot=True, attachments=[Upload(name, data)]
        )
        await bot_says(dc, world.channel, lambda t: t == "Read it.")
    text = sent_text(upstream)  # a shared server conversation: the author's name goes first
    assert text.startswith(f"Alice: [file: {name}]\n```\n") and expected in text
    assert text.endswith("\n```\n\nwhat does it say?")


async def test_two_attachments_are_one_turn_and_stay_in_history(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_reply("Both read.")
    dm = dc.dm_channel(world.alice)
    uploads = [Upload("a.md", b"# alpha"), Upload("b.pdf", pdf_bytes(["beta"]))]
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(dm, world.alice, "", attachments=uploads)
        await bot_says(dc, dm, lambda t: t == "Both read.")
        dc.user_sends(dm, world.alice, "and now?")
        await bot_says(dc, dm, lambda t: t == "Echo: and now?")
    first = "[file: a.md]\n```\n# alpha\n```\n\n[file: b.pdf]\n```\nbeta\n```\n\nSummarise these files."
    assert upstream.chat_requests[0].body["messages"][-1]["content"] == first
    assert first in [m["content"] for m in upstream.chat_requests[1].body["messages"]]


@pytest.mark.parametrize(
    ("name", "data", "refusal"),
    [
        ("broken.pdf", damaged_pdf(), "broken.pdf could not be read: the PDF is damaged."),
        ("locked.pdf", encrypted_pdf("secret plans"), "locked.pdf is password-protected"),
        ("scan.pdf", pdf_bytes([None]), "scan.pdf has no text to read"),
        ("blob.dat", bytes(range(256)) * 4, "I can read text files and PDFs; blob.dat is neither."),
    ],
)
async def test_an_unreadable_attachment_is_refused_and_nothing_is_stored(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path, name: str, data: bytes, refusal: str
) -> None:
    settings = discord_settings(dc, upstream, tmp_path)
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, settings):
        dc.user_sends(dm, world.alice, "summarise", attachments=[Upload(name, data)])
        message = await bot_says(dc, dm, lambda t: refusal in t.replace("\\", ""))  # Markdown escapes
    assert "\n" not in message.content.strip() and upstream.chat_requests == []
    assert await rows(settings.database_url, "messages") == []


async def test_an_attachment_over_max_document_chars_is_cut_with_a_visible_note(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_reply("Long one.")
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path, max_document_chars=1000)):
        dc.user_sends(dm, world.alice, "any errors?", attachments=[Upload("big.log", b"x" * 5000)])
        message = await bot_says(dc, dm, lambda t: t.startswith("Long one."))
    assert "x" * 1000 + "\n```" in sent_text(upstream) and "x" * 1001 not in sent_text(upstream)
    assert "Only the first 1,000 characters of big.log were read." in message.content.replace("\\", "")


async def test_an_oversize_attachment_is_refused_without_download(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path, max_document_bytes=2048)):
        dc.user_sends(dm, world.alice, "read this", attachments=[Upload("huge.txt", b"y" * 4096)])
        await bot_says(dc, dm, lambda t: "too large" in t)
    assert dc.attachment_downloads == [] and upstream.chat_requests == []


async def test_a_strangers_attachment_is_never_downloaded(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    settings = discord_settings(dc, upstream, tmp_path, allowed_users=f"discord:{world.alice.id}")
    dm = dc.dm_channel(world.bob)
    async with running_bot(dc, settings):
        dc.user_sends(dm, world.bob, "read this", attachments=[Upload("x.txt", b"payload")])
        await bot_says(dc, dm, lambda t: "private" in t)
    assert dc.attachment_downloads == [] and upstream.chat_requests == []
