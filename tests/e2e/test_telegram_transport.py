"""How the Telegram bot gets its updates and lives: webhook with a secret, restarts, a refused token."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from core import ConfigError, open_assistant
from tests.e2e.support import free_port
from tests.e2e.telegram_harness import API_KEY, TOKEN, telegram_world
from tests.fakes.telegram import SECRET_HEADER

pytestmark = pytest.mark.e2e


async def test_webhook_mode_answers_pushed_updates_and_checks_the_secret(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    async with telegram_world(
        tmp_path,
        telegram_webhook_url=url,
        telegram_webhook_secret="s3cret_Token-42",
        telegram_webhook_listen="127.0.0.1",
        telegram_webhook_port=port,
    ) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            assert (w.tg.webhook.url, w.tg.webhook.secret_token) == (url, "s3cret_Token-42")
            w.tg.user_sends(chat, user, "hello by webhook")
            await w.said(chat, lambda t: t == "Echo: hello by webhook")
            forged = {
                "update_id": 1,
                "message": {
                    "message_id": 99,
                    "date": 0,
                    "chat": {"id": chat.id, "type": "private"},
                    "from": {"id": user.id, "is_bot": False, "first_name": "Eve"},
                    "text": "forged",
                },
            }
            async with aiohttp.ClientSession() as http:
                for headers in ({}, {SECRET_HEADER: "wrong"}):
                    async with http.post(url, json=forged, headers=headers) as response:
                        assert response.status == 403
            w.tg.user_sends(chat, user, "still here?")
            await w.said(chat, lambda t: t == "Echo: still here?")
        assert w.tg.calls_of("getUpdates") == []
        assert [status for _, status in w.tg.webhook.deliveries] == [200, 200]
        assert [r.last_user_text for r in w.up.chat_requests] == ["hello by webhook", "still here?"]


async def test_without_a_configured_secret_a_random_one_is_used(tmp_path: Path) -> None:
    port = free_port()
    async with telegram_world(
        tmp_path,
        telegram_webhook_url=f"http://127.0.0.1:{port}/",
        telegram_webhook_listen="127.0.0.1",
        telegram_webhook_port=port,
    ) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            secret = w.tg.webhook.secret_token
            w.tg.user_sends(chat, user, "hi")
            await w.said(chat, lambda t: t == "Echo: hi")
        assert secret is not None and len(secret) >= 32


async def test_a_restart_with_the_same_database_continues_the_conversation(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "my name is Ann")
            await w.said(chat, lambda t: t == "Echo: my name is Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "who am I?")
            await w.said(chat, lambda t: t == "Echo: who am I?")
        contents = [m["content"] for m in w.up.chat_requests[-1].body["messages"][1:]]
        assert contents == ["my name is Ann", "Echo: my name is Ann", "who am I?"]


async def test_a_refused_token_is_a_config_error_without_the_token(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        wrong = "987654321:AAWrongTokenWrongTokenWrongToken000"
        settings = w.settings.model_copy(update={"telegram_bot_token": SecretStr(wrong)})
        with pytest.raises(ConfigError) as caught:
            async with w.bot(settings):
                pass
        assert caught.value.setting == "TELEGRAM_BOT_TOKEN" and wrong not in str(caught.value)
        async with open_assistant(w.settings):
            pass  # the database the failed start opened is still usable


async def test_stopping_lets_a_reply_in_flight_finish(tmp_path: Path) -> None:
    answer = "A slow answer, still worth waiting for. " * 4
    async with telegram_world(tmp_path) as w:
        w.up.add_reply(answer, chunk_chars=8, tokens_per_second=25)  # ~0.8 s
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "take your time")
            await w.tg.wait_for(lambda: w.tg.drafts(chat))
        assert w.texts(chat) == [answer.strip()]  # the stop waited for it


async def test_parley_run_telegram_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        # PTB logs its calls (URLs with the token) at DEBUG only with LOG_CONTENT
        async with w.parley_run(tmp_path, LOG_LEVEL="DEBUG", LOG_CONTENT="true") as process:
            w.tg.user_sends(chat, user, "hello from a real process")
            await w.said(chat, lambda t: t == "Echo: hello from a real process")
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 20)
    log = (out + err).decode()
    assert process.returncode == 0, log
    assert "Traceback" not in log and TOKEN.partition(":")[2] not in log and API_KEY not in log
    assert "polling for updates" in log and "/bot<redacted>" in log


async def test_webhook_problems_are_config_errors(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = int(taken.getsockname()[1])
            busy = w.settings.model_copy(
                update={
                    "telegram_webhook_url": f"http://127.0.0.1:{port}/hook",
                    "telegram_webhook_listen": "127.0.0.1",
                    "telegram_webhook_port": port,
                }
            )
            with pytest.raises(ConfigError) as caught:
                async with w.bot(busy):
                    pass
        assert caught.value.setting == "TELEGRAM_WEBHOOK_PORT"
        w.tg.fail_next("setWebhook", 400, "Bad Request: bad webhook: HTTPS url must be provided for webhook")
        refused = busy.model_copy(update={"telegram_webhook_port": free_port()})
        with pytest.raises(ConfigError) as caught:
            async with w.bot(refused):
                pass
        assert caught.value.setting == "TELEGRAM_WEBHOOK_URL"
