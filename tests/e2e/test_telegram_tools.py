"""Tools on Telegram: every case of tests/e2e/tool_cases.py, and a drawing from a photo replied to in a group."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.telegram_harness import API_KEY, BOT_USERNAME, TOKEN, WAIT_SECONDS, telegram_world
from tests.e2e.test_telegram_media import data_url, image_parts
from tests.e2e.tool_cases import CASES, Shown, ToolCase, case_id, check_shown, play
from tests.fakes.images import png_bytes
from tests.fakes.telegram import FakeChat, FakeTelegram, FakeUser
from tests.fakes.upstream import ToolCallScript

pytestmark = pytest.mark.e2e


class TelegramChat:
    """A chat of the fake Telegram with the bot, as tool_cases reads one (tool_cases.ChatView)."""

    def __init__(self, tg: FakeTelegram, user: FakeUser, chat: FakeChat, *, mention: str = "") -> None:
        self._tg, self._user, self._chat, self._mention = tg, user, chat, mention

    def send(self, text: str) -> object:
        return self._tg.user_sends(self._chat, self._user, self._mention + text)["message_id"]

    def answers(self) -> list[Shown]:
        """Text messages, and pictures with a caption (a short answer may ride on its pictures). In a private
        chat an answer streams as drafts first (sendMessageDraft): those count as its versions."""
        drafts = self._tg.drafts(self._chat)
        shown: list[Shown] = []
        since = 0.0
        for message in self._tg.messages(self._chat):
            if message.deleted or not message.text or message.kind not in ("text", "photo"):
                continue
            streamed = [d.text for d in drafts if since < d.time <= message.time]
            shown.append(Shown(message.text, (*streamed, *message.history), message.reply_to_message_id))
            since = message.time
        if drafts and drafts[-1].time > since:  # an answer still being streamed
            shown.append(Shown("", tuple(d.text for d in drafts if d.time > since), None))
        return shown

    def pictures(self) -> list[bytes]:
        return [m.file.data for m in self._tg.messages(self._chat) if m.kind == "photo" and m.file and not m.deleted]

    async def wait_for(self, predicate: Callable[[], object]) -> None:
        await self._tg.wait_for(predicate, WAIT_SECONDS)


@pytest.mark.parametrize("case", CASES, ids=case_id)
async def test_each_tool_case_on_telegram(tmp_path: Path, case: ToolCase) -> None:
    async with telegram_world(tmp_path, **case.settings) as w:
        drawings = case.drawings(w.up)
        user = w.tg.user("Ann")
        if case.in_group:
            chat = TelegramChat(w.tg, user, w.tg.supergroup(), mention=f"@{BOT_USERNAME} ")
        else:
            chat = TelegramChat(w.tg, user, w.tg.private_chat(user))
        async with w.bot():
            asked = await play(case, chat, drawings)
        check_shown(case, chat, asked, secrets=(API_KEY, TOKEN))
        case.check_requests(w.up)


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
