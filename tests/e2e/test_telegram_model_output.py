"""Model output as an attacker writes it, through the real Telegram adapter: image links into the bot's own
network, many slow images, links with dangerous schemes, and answers built to stall the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest

from tests.e2e.telegram_harness import World, telegram_world
from tests.fakes.images import png_bytes
from tests.fakes.telegram import FakeChat
from tests.loop_steps import longest_loop_step as longest_step

pytestmark = pytest.mark.e2e

NOT_SHOWN = "An image could not be shown."
MEDIA_METHODS = ("sendPhoto", "sendMediaGroup", "sendDocument")


def answered(w: World, chat: FakeChat, count: int) -> bool:
    texts = w.texts(chat)
    return len(texts) == count and NOT_SHOWN in texts[-1]


def media_calls(w: World) -> int:
    return sum(len(w.tg.calls_of(method)) for method in MEDIA_METHODS)


@asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[int, list[asyncio.StreamWriter]]]:
    """A loopback server that accepts connections and never answers; yields its port and the connections."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], writers
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_an_image_link_into_the_bots_network_is_not_fetched_and_not_posted(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        internal = w.up.serve("/internal.png", png_bytes(8, 8), content_type="image/png")
        hop = w.up.serve("/hop", b"", status=302, headers={"Location": internal})
        w.up.add_reply(f"Here it is: ![admin]({internal}) and ![cat]({hop})")
        user = w.tg.user("Mallory")
        chat = w.tg.private_chat(user)
        async with w.bot():
            w.tg.user_sends(chat, user, "show me")
            message = await w.said(chat, lambda text: NOT_SHOWN in text)
        assert message.text == f"Here it is:  and\n\n({NOT_SHOWN})"
        assert media_calls(w) == 0
        assert not [r for r in w.up.requests if r.path in ("/internal.png", "/hop")]


async def test_closed_port_open_port_and_private_address_read_the_same(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w, silent_server() as (silent_port, _):
        targets = [
            "http://127.0.0.1:9/a.png",  # closed
            w.up.serve("/secret.png", png_bytes(4, 4), content_type="image/png"),  # open, an image
            f"http://127.0.0.1:{silent_port}/a.png",  # open, silent
            "http://10.20.30.40/a.png",  # private, never dialled
            "http://[::ffff:127.0.0.1]:9/a.png",
        ]
        for target in targets:
            w.up.add_reply(f"Look: ![x]({target})")
        user = w.tg.user("Mallory")
        chat = w.tg.private_chat(user)
        async with w.bot():
            for index in range(len(targets)):
                w.tg.user_sends(chat, user, f"probe {index}")
                await w.tg.wait_for(partial(answered, w, chat, index + 1), 8)
        assert w.texts(chat) == [f"Look:\n\n({NOT_SHOWN})"] * len(targets)
        assert media_calls(w) == 0


async def test_at_most_four_images_are_fetched_per_answer_within_one_deadline(tmp_path: Path) -> None:
    async with (
        telegram_world(tmp_path, allow_private_image_urls=True, image_download_timeout=0.5) as w,
        silent_server() as (silent_port, connections),
    ):
        links = " ".join(f"![{n}](http://127.0.0.1:{silent_port}/{n}.png)" for n in range(8))
        w.up.add_reply(f"Eight slow images: {links}")
        w.up.add_reply("Still here.")
        user = w.tg.user("Mallory")
        chat = w.tg.private_chat(user)
        async with w.bot():
            w.tg.user_sends(chat, user, "stall the chat")
            await w.said(chat, lambda text: NOT_SHOWN in text)
            w.tg.user_sends(chat, user, "hello?")
            await w.said(chat, lambda text: text == "Still here.")
        assert len(connections) == 4  # fetched together; the other four refused without a connection
        assert media_calls(w) == 0


async def test_four_of_eight_reachable_images_are_posted(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, allow_private_image_urls=True) as w:
        url = w.up.serve("/ok.png", png_bytes(8, 8), content_type="image/png")
        w.up.add_reply("Many: " + " ".join(f"![{n}]({url}?n={n})" for n in range(8)))
        user = w.tg.user("Ann")
        chat = w.tg.private_chat(user)
        async with w.bot():
            w.tg.user_sends(chat, user, "pictures")
            await w.tg.wait_for(lambda: len(w.tg.calls_of("sendMediaGroup")) == 1, 8)
        album = [m for m in w.tg.messages(chat) if m.media_group_id]
        assert len(album) == 4
        assert len([r for r in w.up.requests if r.path == "/ok.png"]) == 4


DANGEROUS_LINKS = (
    "Ping [Ann](tg://user?id=42), run [this](javascript:alert(1)), read [secrets](file:///etc/passwd), "
    "see [here](/relative/path) or [there](#fragment); [mail](mailto:a@example.org). "
    "Only [the docs](https://example.org/docs) is a link."
)


async def test_only_http_links_of_an_answer_become_clickable(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        w.up.add_reply(DANGEROUS_LINKS)
        user = w.tg.user("Ann")
        chat = w.tg.private_chat(user)
        async with w.bot():
            w.tg.user_sends(chat, user, "links please")
            message = await w.said(chat, lambda text: text.endswith("is a link."))
        assert [(e.type, e.url) for e in message.entities if e.url] == [("text_link", "https://example.org/docs")]
        assert "Ping Ann, run this, read secrets, see here or there; mail." in message.text


@pytest.mark.parametrize("unit", ["![", "![x](", "[![", "> ", "- ", "."])
async def test_a_hostile_answer_does_not_stall_the_event_loop(tmp_path: Path, unit: str) -> None:
    answer = unit * (64_000 // len(unit))  # before the fix: 13 s of stall for "![", minutes for "> "
    async with telegram_world(tmp_path) as w:
        w.up.add_reply(answer, chunk_chars=4000)
        w.up.add_reply("Still here.")
        user = w.tg.user("Mallory")
        chat = w.tg.private_chat(user)
        with longest_step() as longest:
            async with w.bot():
                w.tg.user_sends(chat, user, "stall")
                await w.tg.wait_for(lambda: any(m.text for m in w.tg.messages(chat) if m.from_bot), 8)
                w.tg.user_sends(chat, user, "hello?")
                await w.tg.wait_for(lambda: "Still here." in w.texts(chat), 30)
        assert longest.seconds < 2.0  # the longest single loop step; generous on a busy machine
