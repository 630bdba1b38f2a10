"""Photos and /imagine on Telegram: vision turns, albums, generated images (photo or document), references."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.telegram_harness import telegram_world
from tests.fakes.images import png_bytes

pytestmark = pytest.mark.e2e


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def image_parts(body: Any) -> list[bytes]:
    """The images of the last user message of a chat request, decoded."""
    content = body["messages"][-1]["content"]
    urls = [part["image_url"]["url"] for part in content if part.get("type") == "image_url"]
    return [base64.b64decode(url.partition(",")[2]) for url in urls]


async def test_photo_with_caption_becomes_a_vision_turn(tmp_path: Path) -> None:
    photo = png_bytes(64, 48)
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, photo=w.tg.add_file(photo), caption="what is this?")
            await w.said(chat, lambda t: t == "Echo: what is this?")
        [request] = w.up.chat_requests
        assert image_parts(request.body) == [photo]
        assert request.body["messages"][-1]["content"][0] == {"type": "text", "text": "what is this?"}


async def test_an_album_becomes_one_turn(tmp_path: Path) -> None:
    first, second = png_bytes(10, 10, (255, 0, 0)), png_bytes(12, 12, (0, 0, 255))
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, photo=w.tg.add_file(first), caption="compare these", media_group_id="g1")
            w.tg.user_sends(chat, user, photo=w.tg.add_file(second), media_group_id="g1")
            await w.said(chat, lambda t: t == "Echo: compare these")
            await w.idle()
        [request] = w.up.chat_requests
        assert image_parts(request.body) == [first, second]
        assert w.texts(chat) == ["Echo: compare these"]


async def test_imagine_uploads_a_png_photo(tmp_path: Path) -> None:
    picture = png_bytes(40, 30)
    async with telegram_world(tmp_path) as w:
        w.up.add_reply("A red square, as asked.", images=[data_url(picture)])
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "/imagine a red square")
            [message] = await w.tg.wait_for(lambda: w.tg.messages(chat))
        [call] = w.tg.calls_of("sendPhoto")
        assert call.params["photo"].data == picture and message.kind == "photo"
        assert message.text == "A red square, as asked."
        assert "upload_photo" in [a.action for a in w.tg.actions(chat)]
        [request] = w.up.chat_requests
        assert request.body["model"] == "fake/painter" and request.body["messages"][0]["content"] == "a red square"


async def test_imagine_cuts_a_long_caption_and_sends_the_rest_as_a_message(tmp_path: Path) -> None:
    caption = " ".join(f"word{i}" for i in range(300))  # ~2,400 characters
    async with telegram_world(tmp_path) as w:
        w.up.add_reply(caption, images=[data_url(png_bytes(20, 20))])
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "/imagine a long story")
            await w.said(chat, lambda t: t.endswith("word299"))
        photo, *rest = w.tg.messages(chat)
        assert photo.kind == "photo" and 0 < len(photo.text) <= 1024 and rest
        assert " ".join([photo.text, *(m.text for m in rest)]).split() == caption.split()


async def test_imagine_sends_an_odd_shaped_image_as_a_document(tmp_path: Path) -> None:
    banner = png_bytes(2100, 100)  # aspect ratio 21: Telegram refuses it as a photo
    async with telegram_world(tmp_path) as w:
        w.up.add_reply("", images=[data_url(banner)])
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "/imagine a banner")
            [message] = await w.tg.wait_for(lambda: w.tg.messages(chat))
        assert message.kind == "document" and message.file is not None and message.file.data == banner
        assert w.tg.calls_of("sendPhoto") == [] and w.tg.errors() == []


async def test_imagine_as_a_reply_to_a_photo_sends_it_as_reference(tmp_path: Path) -> None:
    original, edited = png_bytes(16, 16, (0, 200, 0)), png_bytes(16, 16, (0, 0, 200))
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, photo=w.tg.add_file(original), caption="my picture")
            photo_message = w.tg.chat_history(chat)[-1]
            await w.said(chat, lambda t: t == "Echo: my picture")
            w.up.add_reply("Bluer now.", images=[data_url(edited)])
            w.tg.user_sends(chat, user, "/imagine make it blue", reply_to=photo_message)
            await w.said(chat, lambda t: t == "Bluer now.")
        request = w.up.chat_requests[-1]
        assert request.body["stream"] is False and image_parts(request.body) == [original]
        assert w.tg.calls_of("sendPhoto")[0].params["photo"].data == edited


async def test_imagine_without_a_prompt_gives_a_usage_hint(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "/imagine")
            message = await w.said(chat, lambda t: "/imagine" in t)
        assert "\n" not in message.text and w.up.chat_requests == []


async def test_a_photo_captioned_imagine_is_edited_from_that_photo(tmp_path: Path) -> None:
    original, edited = png_bytes(8, 8, (9, 9, 9)), png_bytes(8, 8, (250, 250, 250))
    async with telegram_world(tmp_path) as w:
        w.up.add_reply("Brighter.", images=[data_url(edited)])
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, photo=w.tg.add_file(original), caption="/imagine make it brighter")
            await w.said(chat, lambda t: t == "Brighter.")
        [request] = w.up.chat_requests
        assert request.body["model"] == "fake/painter" and image_parts(request.body) == [original]
        assert request.body["messages"][0]["content"][0]["text"] == "make it brighter"


@pytest.mark.parametrize(("second", "kind"), [(png_bytes(6, 6), "photo"), (png_bytes(2100, 100), "document")])
async def test_several_generated_images_go_as_one_album(tmp_path: Path, second: bytes, kind: str) -> None:
    first = png_bytes(5, 5)
    async with telegram_world(tmp_path) as w:
        w.up.add_reply("Two takes.", images=[data_url(first), data_url(second)])
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "/imagine two takes")
            await w.tg.wait_for(lambda: len(w.tg.messages(chat)) == 2)
        messages = w.tg.messages(chat)
        assert [m.kind for m in messages] == [kind, kind]  # one odd image makes the whole album documents
        assert [m.file.data for m in messages if m.file] == [first, second]
        assert [m.text for m in messages] == ["Two takes.", ""] and messages[0].media_group_id is not None
        assert len(w.tg.calls_of("sendMediaGroup")) == 1
