"""Telegram, what is stored: image bytes bounded per message and kept only for recent turns, /forget that a
reply in flight cannot undo, a quoted photo removed by its author's /forget, and input refused before it is
stored (invisible-only text, image types the bot cannot read).
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from tests.e2e.database import every_value, holds, mentions, rows
from tests.e2e.paused_reply import add_paused_image, add_paused_reply
from tests.e2e.telegram_harness import BOT_USERNAME, World, telegram_world
from tests.fakes.images import png_bytes

pytestmark = pytest.mark.e2e

FULL_ANSWER = "A slow answer that ends after the forget."
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\ufe0f \u3164"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'
BMP = b"BM" + bytes(52)


def upstream_images(w: World, index: int) -> int:
    """How many images the request `index` sent upstream, over all its messages."""
    return sum(
        1
        for message in w.up.chat_requests[index].body["messages"]
        if isinstance(message["content"], list)
        for part in message["content"]
        if part.get("type") == "image_url"
    )


async def test_photos_older_than_the_image_window_leave_the_database(tmp_path: Path) -> None:
    old, new = png_bytes(30, 30, (10, 20, 30)), png_bytes(31, 31, (40, 50, 60))
    async with telegram_world(tmp_path, history_image_turns=2) as w:
        ann = w.tg.user("Ann")
        chat = w.tg.private_chat(ann)
        async with w.bot():
            w.tg.user_sends(chat, ann, photo=w.tg.add_file(old), caption="first")
            await w.said(chat, lambda t: t == "Echo: first")
            kept = await every_value(w.settings.database_url)
            w.tg.user_sends(chat, ann, photo=w.tg.add_file(new), caption="second")
            await w.said(chat, lambda t: t == "Echo: second")
            w.tg.user_sends(chat, ann, "third")
            await w.said(chat, lambda t: t == "Echo: third")
        stored = await every_value(w.settings.database_url)
        assert holds(kept, old)
        assert not holds(stored, old) and holds(stored, new)  # "first" is the third user turn from the end
        assert [m.image_count for m in await rows(w.settings.database_url, "messages") if m.role == "user"] == [1, 1, 0]
        assert [upstream_images(w, i) for i in range(3)] == [1, 2, 1]
        assert "[an image was shared here]" in str(w.up.chat_requests[2].body["messages"])


async def test_an_album_over_the_per_message_cap_is_refused_and_not_stored(tmp_path: Path) -> None:
    album = [png_bytes(600, 600, (i, 0, 0)) for i in range(3)]  # about 2.3 kB each
    async with telegram_world(tmp_path, image_max_bytes_per_turn=5000) as w:
        ann = w.tg.user("Ann")
        chat = w.tg.private_chat(ann)
        async with w.bot():
            for number, data in enumerate(album):
                w.tg.user_sends(
                    chat,
                    ann,
                    photo=w.tg.add_file(data),
                    caption="compare" if number == 0 else None,
                    media_group_id="g1",
                )
            refusal = await w.said(chat, lambda t: "too large" in t)
            await w.idle()
        assert "5 kB per message" in refusal.text and w.up.chat_requests == []
        assert w.tg.calls_of("getFile") == []  # refused on the sizes Telegram declares, nothing downloaded
        assert await rows(w.settings.database_url, "messages") == []


async def test_forget_while_a_reply_streams_in_a_dm_leaves_nothing_and_no_error(tmp_path: Path) -> None:
    go = asyncio.Event()
    async with telegram_world(tmp_path, telegram_stream_mode="edit", stream_idle_timeout=30.0) as w:
        add_paused_reply(w.up, "A slow answer ", "that ends after the forget.", go)
        ann = w.tg.user("Ann")
        chat = w.tg.private_chat(ann)
        async with w.bot():
            w.tg.user_sends(chat, ann, "my secret is 4242")
            await w.said(chat, lambda t: t == "A slow answer")
            w.tg.user_sends(chat, ann, "/forget")
            await w.said(chat, lambda t: t.startswith("Done:"))
            go.set()
            await w.said(chat, lambda t: t == FULL_ANSWER)
            await w.idle()
        stored = await every_value(w.settings.database_url)
        assert not mentions(stored, "4242") and not mentions(stored, "slow answer") and not mentions(stored, "Ann")
        assert await rows(w.settings.database_url, "users") == []
        assert await rows(w.settings.database_url, "usage_records") == []
        assert [t for t in w.texts(chat) if "wrong" in t.lower() or "error" in t.lower()] == []


async def test_forget_while_a_reply_streams_in_a_group_is_not_undone(tmp_path: Path) -> None:
    go = asyncio.Event()
    async with telegram_world(tmp_path, stream_idle_timeout=30.0) as w:
        ann, bob = w.tg.user("Ann"), w.tg.user("Bob")
        group = w.tg.group()
        async with w.bot():
            w.tg.user_sends(group, bob, f"@{BOT_USERNAME} bob was here")
            await w.said(group, lambda t: t == "Echo: Bob: bob was here")
            add_paused_reply(w.up, "A slow answer ", "that ends after the forget.", go)
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} my secret is 4242")
            await w.said(group, lambda t: t == "A slow answer")
            w.tg.user_sends(group, ann, "/forget")
            await w.said(group, lambda t: t.startswith("Done:"))
            go.set()
            await w.said(group, lambda t: t == FULL_ANSWER)
            await w.idle()
        stored = await every_value(w.settings.database_url)
        assert not mentions(stored, "4242") and not mentions(stored, "slow answer")
        assert [u.name for u in await rows(w.settings.database_url, "users")] == ["Bob"]
        usage = await rows(w.settings.database_url, "usage_records")
        assert len(usage) == 1 and mentions(stored, "bob was here")  # Bob's turn and its usage stay


async def test_forget_while_an_image_is_drawn_leaves_no_usage_behind(tmp_path: Path) -> None:
    go = asyncio.Event()
    picture = png_bytes(8, 8, (5, 5, 5))
    async with telegram_world(tmp_path) as w:
        add_paused_image(w.up, "data:image/png;base64," + base64.b64encode(picture).decode(), go)
        ann = w.tg.user("Ann")
        chat = w.tg.private_chat(ann)
        async with w.bot():
            w.tg.user_sends(chat, ann, "/imagine a grey square")
            await w.tg.wait_for(lambda: w.up.chat_requests)
            w.tg.user_sends(chat, ann, "/forget")
            await w.said(chat, lambda t: t.startswith("Done:"))
            go.set()
            await w.said(chat, lambda t: t == "Drawn.")
        assert w.tg.calls_of("sendPhoto")[0].params["photo"].data == picture
        assert await rows(w.settings.database_url, "users") == []
        assert await rows(w.settings.database_url, "usage_records") == []
        assert await rows(w.settings.database_url, "conversations") == []


async def test_a_quoted_photo_goes_with_its_authors_forget(tmp_path: Path) -> None:
    photo = png_bytes(20, 20, (1, 2, 3))
    async with telegram_world(tmp_path) as w:
        ann, bob = w.tg.user("Ann"), w.tg.user("Bob")
        group = w.tg.group()
        async with w.bot():
            posted = w.tg.user_sends(group, ann, photo=w.tg.add_file(photo), caption="my cat")
            w.tg.user_sends(group, bob, f"@{BOT_USERNAME} what is this?", reply_to=posted)
            await w.said(group, lambda t: t == "Echo: Bob: what is this?")
            before = await every_value(w.settings.database_url)
            w.tg.user_sends(group, ann, "/forget")
            await w.said(group, lambda t: t.startswith("Done:"))
            after = await every_value(w.settings.database_url)
            w.tg.user_sends(group, bob, f"@{BOT_USERNAME} and now?")
            await w.said(group, lambda t: t == "Echo: Bob: and now?")
        assert holds(before, photo) and not holds(after, photo)
        assert mentions(after, "what is this?")  # Bob's turn stays, without Ann's photo
        assert upstream_images(w, 0) == 1 and upstream_images(w, 1) == 0
        assert "[an image was shared here]" in str(w.up.chat_requests[1].body["messages"])


async def test_text_of_invisible_characters_counts_as_empty(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        ann = w.tg.user("Ann")
        chat, group = w.tg.private_chat(ann), w.tg.group()
        async with w.bot():
            w.tg.user_sends(chat, ann, INVISIBLE)
            await w.said(chat, lambda t: "nothing to answer" in t)
            w.tg.user_sends(group, ann, f"@{BOT_USERNAME} {INVISIBLE}")
            await w.said(group, lambda t: "nothing to answer" in t)
        assert w.up.chat_requests == []
        assert await rows(w.settings.database_url, "messages") == []


@pytest.mark.parametrize(("data", "mime"), [(SVG, "image/svg+xml"), (BMP, "image/bmp")], ids=["svg", "bmp"])
async def test_an_svg_or_bmp_from_a_user_is_an_unsupported_type(tmp_path: Path, data: bytes, mime: str) -> None:
    async with telegram_world(tmp_path) as w:
        ann = w.tg.user("Ann")
        chat = w.tg.private_chat(ann)
        async with w.bot():
            w.tg.user_sends(chat, ann, document=w.tg.add_file(data, file_name="picture", mime_type=mime))
            refusal = await w.said(chat, lambda t: "not supported" in t)
        assert "image type" in refusal.text and "model" not in refusal.text
        assert w.up.chat_requests == []
