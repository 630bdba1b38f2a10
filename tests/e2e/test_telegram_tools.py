"""Tools on Telegram: the chat model draws with `generate_image` in a group, with no command."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.telegram_harness import BOT_USERNAME, telegram_world
from tests.e2e.test_telegram_media import data_url, image_parts
from tests.fakes.images import png_bytes
from tests.fakes.upstream import ToolCallScript

pytestmark = pytest.mark.e2e


async def test_a_mention_in_a_group_gets_a_drawing_from_the_chat_model_in_the_same_reply(tmp_path: Path) -> None:
    mascot, pirate = png_bytes(16, 16, (0, 200, 0)), png_bytes(24, 24, (200, 0, 0))
    async with telegram_world(tmp_path) as w:
        alice = w.tg.user("Alice")
        group = w.tg.supergroup()
        w.up.add_reply(
            "Arr, drawing.", finish_reason="tool_calls",
            tool_calls=[ToolCallScript("c1", "generate_image", '{"prompt": "our green mascot as a pirate"}')],
        )  # fmt: skip
        w.up.add_reply("", images=[data_url(pirate)])  # the image model's answer
        w.up.add_reply("Here is our mascot as a pirate.")
        async with w.bot():
            w.tg.user_sends(group, alice, photo=w.tg.add_file(mascot), caption="our mascot")  # not for the bot
            photo_message = w.tg.chat_history(group)[-1]
            question = w.tg.user_sends(
                group, alice, f"@{BOT_USERNAME} draw our mascot as a pirate", reply_to=photo_message
            )
            answer = await w.said(group, lambda t: t.endswith("Here is our mascot as a pirate."))
            await w.tg.wait_for(lambda: w.tg.calls_of("sendPhoto"))
        [upload] = w.tg.calls_of("sendPhoto")
        assert upload.params["photo"].data == pirate
        assert answer.text == "Arr, drawing.\n\nHere is our mascot as a pirate."
        # The text the group read stays the reply to the question; the picture follows it.
        assert answer.reply_to_message_id == question["message_id"] and answer.kind == "text"
        chat_first, drawing, chat_second = w.up.chat_requests
        assert chat_first.tool_names == ["generate_image"]
        # The replied-to photo goes to the image model as a reference, as with /imagine.
        assert drawing.body["model"] == "fake/painter" and image_parts(drawing.body) == [mascot]
        assert chat_second.tool_results[0]["content"] == "Done: an image was shown to the user."


async def test_a_failed_drawing_and_a_gateway_refusing_tools_still_get_answers(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        w.up.add_reply(
            finish_reason="tool_calls", tool_calls=[ToolCallScript("c1", "generate_image", '{"prompt": "a cat"}')]
        )
        w.up.add_error(400, {"error": {"message": "content policy: key sk-hidden", "type": "bad_request"}})
        w.up.add_reply("I could not draw that, sorry.")
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "draw a cat")
            await w.said(chat, lambda t: t == "I could not draw that, sorry.")
            w.up.refuse_tools = True  # from now on, as if the operator switched to a model without tools
            w.tg.user_sends(chat, user, "hello")
            await w.said(chat, lambda t: t == "Echo: hello")
            w.tg.user_sends(chat, user, "again")
            await w.said(chat, lambda t: t == "Echo: again")
        assert w.texts(chat) == ["I could not draw that, sorry.", "Echo: hello", "Echo: again"]
        assert w.up.chat_requests[2].tool_results[0]["content"] == "error: the tool failed (UpstreamRejectedError)"
        # The refused request, its retry without tools, then no tools offered at all.
        assert [r.tool_names for r in w.up.chat_requests[3:]] == [["generate_image"], [], []]
