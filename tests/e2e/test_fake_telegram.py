"""The fake Bot API server against the real python-telegram-bot: formats, rules, limits, files, updates."""

from __future__ import annotations

import asyncio
import datetime as dtm
import re
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, MessageEntity, Update
from telegram.error import BadRequest, Conflict, RetryAfter
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from tests.fakes.images import png_bytes
from tests.fakes.telegram import SECRET_HEADER, FakeTelegram, RateLimits

pytestmark = pytest.mark.e2e

TOKEN = "123456789:AAFakeTokenForTestsOnly_xyz"
NOT_MODIFIED = "Message is not modified"  # PTB strips "Bad Request: " and capitalize()s the rest


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, limits=RateLimits.off()) as server:
        yield server
        assert server.internal_errors == []


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=tg.base_url, base_file_url=tg.base_file_url) as client:
        yield client


async def test_get_me_describes_the_bot_and_records_the_call(tg: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456789, "parley_test_bot", True)
    assert [call.method for call in tg.calls] == ["getMe", "getMe"]  # Bot.initialize() + ours
    assert all(TOKEN not in text for text in tg.all_sent_text())


async def test_wrong_token_is_unauthorized(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http, http.post(f"{tg.base_url}0:wrong/getMe") as resp:
        assert resp.status == 401
        assert (await resp.json())["ok"] is False


async def test_edit_with_identical_content_is_not_modified(tg: FakeTelegram, bot: Bot) -> None:
    chat = tg.private_chat(tg.user())
    sent = await bot.send_message(chat.id, "first")
    await bot.edit_message_text("second", chat_id=chat.id, message_id=sent.message_id)
    with pytest.raises(BadRequest, match=NOT_MODIFIED):
        await bot.edit_message_text("second", chat_id=chat.id, message_id=sent.message_id)
    # Same visible text and entities after parsing is "the same content" too.
    with pytest.raises(BadRequest, match=NOT_MODIFIED):
        await bot.edit_message_text("  second\n", chat_id=chat.id, message_id=sent.message_id, parse_mode="HTML")
    [message] = tg.messages(chat)
    assert (message.text, message.edit_count, message.history) == ("second", 1, ["first", "second"])
    await bot.delete_message(chat.id, sent.message_id)
    assert tg.messages(chat)[0].deleted
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("third", chat_id=chat.id, message_id=sent.message_id)


async def test_text_length_is_counted_in_utf16_code_units_after_parsing(tg: FakeTelegram, bot: Bot) -> None:
    chat = tg.private_chat(tg.user())
    await bot.send_message(chat.id, "a" * 4096)
    await bot.send_message(chat.id, "😀" * 2048)  # 4096 UTF-16 units
    await bot.send_message(chat.id, "<b>" + "b" * 4096 + "</b>", parse_mode="HTML")  # tags don't count
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(chat.id, "😀" * 2049)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(chat.id, "a" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(chat.id, " \n ")
    assert [len(m.text) for m in tg.messages(chat)] == [4096, 2048, 4096]


async def test_caption_over_1024_units_is_refused(tg: FakeTelegram, bot: Bot) -> None:
    chat = tg.private_chat(tg.user())
    await bot.send_photo(chat.id, png_bytes(), caption="c" * 1024)
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(chat.id, png_bytes(), caption="c" * 1025)
    assert [m.text for m in tg.messages(chat)] == ["c" * 1024]


async def test_html_is_parsed_into_entities_and_broken_html_is_refused(tg: FakeTelegram, bot: Bot) -> None:
    chat = tg.private_chat(tg.user())
    html = '<b>bold</b> &lt;3 <a href="https://e.x/?a=1&amp;b=2">link</a> <pre><code class="language-py">x</code></pre>'
    sent = await bot.send_message(chat.id, html, parse_mode="HTML")
    assert sent.text == "bold <3 link x"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 4),
        ("text_link", 8, 4),
        ("pre", 13, 1),
    ]
    assert sent.entities[1].url == "https://e.x/?a=1&b=2" and sent.entities[2].language == "py"
    for broken in ("<b>open", "<b>x</i>", "<br>", "1 < 2", "fish & chips", "<span>x</span>"):
        with pytest.raises(BadRequest, match="Can't parse entities"):
            await bot.send_message(chat.id, broken, parse_mode="HTML")
    assert len(tg.messages(chat)) == 1


async def test_markdown_v2_needs_reserved_characters_escaped(tg: FakeTelegram, bot: Bot) -> None:
    chat = tg.private_chat(tg.user())
    with pytest.raises(BadRequest, match=r"(?i)character '\.' is reserved"):
        await bot.send_message(chat.id, "Done.", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match=r"(?i)can't find end of bold entity"):
        await bot.send_message(chat.id, "*open", parse_mode="MarkdownV2")
    sent = await bot.send_message(chat.id, r"*Done* \- 1\+1\=2\. [site](https://e.x/a\)b)", parse_mode="MarkdownV2")
    assert sent.text == "Done - 1+1=2. site"
    assert [(e.type, e.offset, e.length, e.url) for e in sent.entities] == [
        ("bold", 0, 4, None),
        ("text_link", 14, 4, "https://e.x/a)b"),
    ]
    assert tg.messages(chat)[0].entities[0].type == "bold"


@pytest.mark.parametrize(
    ("mode", "source", "visible", "types"),
    [
        (
            "HTML",
            "<tg-spoiler>s</tg-spoiler> <blockquote expandable>q</blockquote>",
            "s q",
            ["spoiler", "expandable_blockquote"],
        ),
        ("HTML", '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> &#x1F600;', "👍 😀", ["custom_emoji"]),
        ("MarkdownV2", "```python\nprint(1)\n```", "print(1)", ["pre"]),
        ("MarkdownV2", ">quoted\n>lines\nafter", "quoted\nlines\nafter", ["blockquote"]),
        ("MarkdownV2", "**>hidden\n>more||\nafter", "hidden\nmore\nafter", ["expandable_blockquote"]),
        (
            "MarkdownV2",
            "__u__ ~s~ ||sp|| `c\\`` 1\\.",
            "u s sp c` 1.",
            ["underline", "strikethrough", "spoiler", "code"],
        ),
        ("Markdown", "*b* _i_ `c`", "b i c", ["bold", "italic", "code"]),
    ],
)
async def test_formatting_yields_the_visible_text_and_entities(
    tg: FakeTelegram, bot: Bot, mode: str, source: str, visible: str, types: list[str]
) -> None:
    sent = await bot.send_message(tg.private_chat(tg.user()).id, source, parse_mode=mode)
    assert sent.text == visible
    assert [entity.type for entity in sent.entities] == types


async def test_flooding_one_chat_gets_429_with_retry_after(
    tg: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # else PTB's RetryAfter() warns (an error under filterwarnings)
    tg.limits = RateLimits(chat_per_second=1, chat_burst=2)
    chat = tg.private_chat(tg.user())
    await bot.send_message(chat.id, "one")
    await bot.send_message(chat.id, "two")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(chat.id, "three")
    assert caught.value.retry_after == dtm.timedelta(seconds=1)
    assert tg.count_429 == 1 and tg.errors()[-1].description == "Too Many Requests: retry after 1"
    other = tg.private_chat(tg.user("Bob"))
    await bot.send_message(other.id, "another chat has its own budget")


async def test_group_gets_429_past_its_per_window_budget(
    tg: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    tg.limits = RateLimits(chat_per_second=100, chat_burst=100, group_per_window=3, group_window_seconds=30)
    group = tg.group()
    for n in range(3):
        await bot.send_message(group.id, f"m{n}")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(group.id, "m3")
    assert caught.value.retry_after in (dtm.timedelta(seconds=29), dtm.timedelta(seconds=30))
    assert tg.count_429 == 1


async def test_a_chat_answered_429_stays_held_until_retry_after_has_passed(
    tg: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    tg.limits = RateLimits(chat_per_second=100, chat_burst=100)
    chat = tg.private_chat(tg.user())
    tg.fail_next("sendMessage", 429, "Too Many Requests: retry after 5", retry_after=5)
    with pytest.raises(RetryAfter):
        await bot.send_message(chat.id, "refused")
    with pytest.raises(RetryAfter) as caught:  # the budget would allow it, the flood wait does not
        await bot.send_message(chat.id, "too early")
    assert caught.value.retry_after in (dtm.timedelta(seconds=4), dtm.timedelta(seconds=5))
    await bot.send_message(tg.private_chat(tg.user("Bob")).id, "another chat is not held")
    assert tg.count_429 == 2


@pytest.mark.parametrize("url", ["README.md", "#intro", "/docs/a.md", "docs/a.md#top"])
async def test_text_link_to_a_relative_url_is_refused(tg: FakeTelegram, bot: Bot, url: str) -> None:
    chat = tg.private_chat(tg.user())
    link = MessageEntity("text_link", 0, 6, url=url)
    # PTB capitalize()s the description, which lowercases the rest of it.
    with pytest.raises(BadRequest, match=f"(?i)entity url '{re.escape(url)}' is invalid: url host is empty"):
        await bot.send_message(chat.id, "README here", entities=[link])
    absolute = MessageEntity("text_link", 0, 6, url="https://x.org/r")
    sent = await bot.send_message(chat.id, "README here", entities=[absolute])
    assert sent.entities[0].url == "https://x.org/r"


async def test_uploaded_photo_is_kept_and_downloadable(tg: FakeTelegram, bot: Bot) -> None:
    chat = tg.private_chat(tg.user())
    image = png_bytes(40, 30)
    sent = await bot.send_photo(chat.id, image, caption="<i>pic</i>", parse_mode="HTML")
    stored = tg.messages(chat)[0].file
    assert stored is not None and stored.data == image and (stored.width, stored.height) == (40, 30)
    assert sent.caption == "pic" and sent.photo[-1].width == 40
    assert tg.calls_of("sendPhoto")[0].params["photo"].data == image  # arrived as a multipart file part
    downloaded = await (await bot.get_file(sent.photo[-1].file_id)).download_as_bytearray()
    assert bytes(downloaded) == image
    again = await bot.send_photo(chat.id, sent.photo[-1].file_id)  # by file_id
    assert again.photo[-1].file_id == sent.photo[-1].file_id
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(chat.id, b"not an image")
    with pytest.raises(BadRequest, match="Photo_invalid_dimensions"):
        await bot.send_photo(chat.id, png_bytes(2100, 100))


async def test_user_photo_reaches_the_bot_through_get_file(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user()
    chat = tg.private_chat(user)
    image = png_bytes(64, 48)
    message = tg.user_sends(chat, user, photo=tg.add_file(image), caption="what is this?")
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.caption == "what is this?"
    largest = update.message.photo[-1]
    assert (largest.width, largest.height) == (64, 48) and largest.file_id == message["photo"][-1]["file_id"]
    data = await (await bot.get_file(largest.file_id)).download_as_bytearray()
    assert bytes(data) == image


async def test_long_poll_holds_until_an_update_is_queued(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user()
    chat = tg.private_chat(user)
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert time.monotonic() - started >= 0.9
    polls = tg.polls_received
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await tg.wait_for(lambda: tg.polls_received > polls)  # held by the fake now
    tg.user_sends(chat, user, "hello")
    started = time.monotonic()
    [update] = await poll
    assert time.monotonic() - started < 1 and update.message is not None and update.message.text == "hello"
    [again] = await bot.get_updates()  # not confirmed yet: delivered again
    assert again.update_id == update.update_id
    assert await bot.get_updates(offset=update.update_id + 1) == ()
    polls = tg.polls_received
    held = asyncio.create_task(bot.get_updates(timeout=5))
    await tg.wait_for(lambda: tg.polls_received > polls)
    async with Bot(TOKEN, base_url=tg.base_url) as second_instance:
        assert await second_instance.get_updates() == ()  # ends the held poll, as on Telegram
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await held


async def test_application_polling_delivers_update_to_handler(tg: FakeTelegram) -> None:
    user = tg.user(username="alice")
    group = tg.supergroup("Forum", is_forum=True)
    topic = tg.create_topic(group, "Questions", creator=user)
    seen: list[Update] = []

    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update)
        assert update.effective_message is not None
        await update.effective_message.reply_text("pong")

    application = ApplicationBuilder().token(TOKEN).base_url(tg.base_url).base_file_url(tg.base_file_url).build()
    application.add_handler(MessageHandler(filters.TEXT, answer))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(timeout=dtm.timedelta(seconds=1))
        sent = tg.user_sends(group, user, "ping @parley_test_bot", message_thread_id=topic)
        reply = await tg.wait_for(lambda: tg.messages(group))
        await application.updater.stop()
        await application.stop()
    message = seen[0].effective_message
    assert message is not None and message.is_topic_message and message.message_thread_id == topic
    assert [e.type for e in message.entities] == [MessageEntity.MENTION]
    assert message.parse_entity(message.entities[0]) == "@parley_test_bot"
    assert sent["reply_to_message"]["forum_topic_created"]["name"] == "Questions"  # Telegram's topic quirk
    assert reply[0].text == "pong" and reply[0].message_thread_id == topic
    assert reply[0].reply_to_message_id == sent["message_id"]
    assert tg.pending_updates == []  # confirmed by PTB's final getUpdates
    assert tg.errors() == []  # the poll PTB abandoned on stop is not a 409


async def test_message_drafts_are_private_chat_only(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user()
    chat = tg.private_chat(user)
    assert await bot.send_message_draft(chat.id, draft_id=7, text="Thinking")
    assert await bot.send_message_draft(chat.id, draft_id=7, text="<b>Thinking</b> harder", parse_mode="HTML")
    assert [(d.draft_id, d.text) for d in tg.drafts(chat)] == [(7, "Thinking"), (7, "Thinking harder")]
    group = tg.group()
    with pytest.raises(BadRequest, match="Textdraft_peer_invalid"):
        await bot.send_message_draft(group.id, draft_id=7, text="nope")
    tg.draft_error = "Bad Request: TEXTDRAFT_PEER_INVALID"
    with pytest.raises(BadRequest):
        await bot.send_message_draft(chat.id, draft_id=8, text="refused on demand")
    assert "refused on demand" in tg.all_sent_text()


async def test_webhook_pushes_updates_with_the_secret_and_blocks_polling(tg: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[dict[str, object], str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get(SECRET_HEADER)))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        await bot.set_webhook(url, secret_token="s3cret")
        assert (await bot.get_webhook_info()).url == url
        with pytest.raises(Conflict):
            await bot.get_updates()
        user = tg.user()
        tg.user_sends(tg.private_chat(user), user, "/start")
        await tg.wait_for(lambda: received)
    finally:
        await runner.cleanup()
    [(update, secret)] = received
    assert secret == "s3cret"
    message = update["message"]
    assert isinstance(message, dict)
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    await bot.delete_webhook()
    assert await bot.get_updates() == ()  # delivered, so confirmed


async def test_injected_failures_and_user_edits(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user()
    chat = tg.private_chat(user)
    tg.fail_next("sendMessage", description="Bad Request: injected")
    with pytest.raises(BadRequest, match="Injected"):
        await bot.send_message(chat.id, "x")
    await bot.send_message(chat.id, "x")
    tg.user_sends(chat, user, "/model@parley_test_bot gpt-4o")
    tg.user_sends(chat, user, "/model gpt-4o-mini", edited=True)
    first, edit = await bot.get_updates()
    assert first.message is not None and first.message.parse_entities(["bot_command"])
    assert list(first.message.parse_entities().values()) == ["/model@parley_test_bot"]
    assert edit.edited_message is not None and edit.edited_message.text == "/model gpt-4o-mini"
    assert edit.edited_message.message_id == first.message.message_id
    assert [call.status for call in tg.calls_of("sendMessage")] == [400, 200]


async def test_commands_and_chat_actions_are_recorded(tg: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([("start", "Start"), ("imagine", "Draw a picture")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "imagine"]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Bad-Name", "x")])
    chat = tg.private_chat(tg.user())
    await bot.send_chat_action(chat.id, "upload_photo")
    assert [a.action for a in tg.actions(chat)] == ["upload_photo"]
    assert "Draw a picture" in tg.all_sent_text()
