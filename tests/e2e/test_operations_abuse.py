"""Operations, tried as an attacker would: a /healthz flood, secrets in every library's DEBUG lines, forged
webhook pushes. Each runs the real parts (aiohttp endpoint, PTB, discord.py, httpx) against the fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from bots.telegram_bot import run_telegram
from core import Metrics, open_assistant, serve_metrics
from core.logs import configure_logging
from tests.e2e.discord_harness import API_KEY as DISCORD_API_KEY
from tests.e2e.discord_harness import build_world, discord_settings, running_bot
from tests.e2e.discord_harness import fast_limits as discord_limits
from tests.e2e.support import free_port, make_settings
from tests.e2e.telegram_harness import TOKEN, WAIT_SECONDS, World, telegram_world
from tests.fakes.clock import FakeWallClock, utc
from tests.fakes.discord import FakeDiscord
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

# The figures: the upstream is asked at most every 15 s; refusals are logged at most once a minute.
HEALTH_CACHE_SECONDS = 15.0
REFUSAL_LOG_SECONDS = 60.0
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # Bot API setWebhook: sent with every push
MARK = "<redacted>"
# Shaped as Discord's: base64 of the bot id, a timestamp, an HMAC.
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhJkLm.aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789_-"


@pytest.fixture
def captured_logs(restored_logging: None) -> io.StringIO:
    """Everything every logger emits, configured as `parley run` does at LOG_LEVEL=DEBUG, LOG_CONTENT=true."""
    stream = io.StringIO()
    configure_logging("DEBUG", log_format="text", log_content=True, stream=stream)
    return stream


def _models_calls(upstream: FakeUpstream) -> int:
    return sum(1 for r in upstream.requests if r.method == "GET" and r.path.endswith("/models"))


# --- /healthz ---------------------------------------------------------------------------------------------


async def test_fifty_healthz_requests_cost_one_upstream_call_and_the_next_comes_after_15_seconds(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    clock = FakeWallClock(utc(2027, 1, 15, 8, 0, 0))
    metrics = Metrics()
    async with (
        open_assistant(make_settings(upstream, tmp_path), metrics=metrics, clock=clock) as assistant,
        serve_metrics(metrics, assistant.health, port=0) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        answers = await asyncio.gather(*(client.get("/healthz") for _ in range(50)))
        assert [a.status_code for a in answers] == [200] * 50
        assert {a.json()["upstream"] for a in answers} == {"ok"}
        assert _models_calls(upstream) == 1

        clock.advance(HEALTH_CACHE_SECONDS - 0.5)
        assert (await client.get("/healthz")).status_code == 200
        assert _models_calls(upstream) == 1
        clock.advance(0.5)  # 15 s after the check: asked again
        assert (await client.get("/healthz")).status_code == 200
        assert _models_calls(upstream) == 2

        await upstream.__aexit__(None, None, None)  # the gateway goes away: seen at the next check
        assert (await client.get("/healthz")).status_code == 200
        clock.advance(HEALTH_CACHE_SECONDS)
        answer = await client.get("/healthz")
        assert answer.status_code == 503 and answer.json()["upstream"] == "UpstreamUnavailableError"


# --- secrets in logs --------------------------------------------------------------------------------------


def _third_party_lines(secret_forms: list[str]) -> None:
    """What any library might log while the bot runs: the secrets in a URL argument and in an exception."""
    library = logging.getLogger("some.http.library")
    for form in secret_forms:
        library.debug("GET %s -> 200", f"https://example.invalid/x/{form}/y")
        try:
            raise RuntimeError(f"connection to /{form}/ refused")
        except RuntimeError:
            library.exception("request failed")


async def test_telegram_debug_logs_with_content_hold_no_form_of_the_bot_token(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    secret_half = TOKEN.split(":", 1)[1]
    encoded = quote(TOKEN, safe="")
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "hello PELICAN")
            await w.said(chat, lambda t: t == "Echo: hello PELICAN")
            _third_party_lines([TOKEN, encoded, secret_half])
    logged = captured_logs.getvalue()
    for form in (TOKEN, encoded, encoded.lower(), secret_half):
        assert form not in logged
    # Redaction, not silence: the lines that carried the token are there, the token replaced.
    assert f"/bot{MARK}/getMe" in logged  # httpx's request line
    assert "Calling Bot API endpoint `sendMessage`" in logged and "Echo: hello PELICAN" in logged
    assert logged.count(f"/x/{MARK}/y") == 3 and logged.count(f"connection to /{MARK}/ refused") == 3


async def test_discord_debug_logs_with_content_hold_neither_the_bot_token_nor_an_interaction_token(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    async with (
        FakeDiscord(token=DISCORD_TOKEN, rate_limits=discord_limits()) as dc,
        FakeUpstream(api_key=DISCORD_API_KEY) as upstream,
    ):
        world = build_world(dc)
        dm = dc.dm_channel(world.alice)
        async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
            interaction = dc.invoke_slash("reset", channel=dm, user=world.alice)
            await dc.wait_for(lambda: interaction.followup_ids)
            _third_party_lines([DISCORD_TOKEN, interaction.token])
    logged = captured_logs.getvalue()
    assert interaction.token.startswith("aW50") and interaction.token not in logged
    assert interaction.token[16:40] not in logged  # nor a piece of it
    assert DISCORD_TOKEN not in logged and quote(DISCORD_TOKEN, safe="") not in logged
    # Redaction, not silence: the gateway event and the callback route were logged, the token replaced.
    assert any("INTERACTION_CREATE" in line and f"'token': '{MARK}'" in line for line in logged.splitlines())
    assert f"/interactions/{interaction.id}/{MARK}/callback" in logged
    assert logged.count(f"/x/{MARK}/y") == 2 and logged.count(f"connection to /{MARK}/ refused") == 2


# --- the Telegram webhook ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _webhook_bot(w: World, metrics: Metrics, clock: FakeWallClock) -> AsyncIterator[None]:
    """`run_telegram` in webhook mode with metrics and our clock, until setWebhook succeeded."""
    async with open_assistant(w.settings, metrics=metrics) as assistant:
        task = asyncio.create_task(run_telegram(assistant, w.settings, clock=clock))
        try:
            await w.tg.wait_for(lambda: any(c.method == "setWebhook" and c.ok for c in w.tg.calls), WAIT_SECONDS)
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_forged_webhook_pushes_get_403_even_with_a_non_utf8_secret_and_are_logged_once_a_minute(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    secret = "s3cret_Token-42"
    forged = {"update_id": 1, "message": {"message_id": 9, "date": 0, "chat": {"id": 1, "type": "private"}}}
    name = SECRET_HEADER.encode()
    headers: list[dict[bytes, bytes]] = [
        {name: b"\xff\xfe\xc3("},  # not UTF-8
        {name: secret.encode() + b"\xe9"},  # the secret and a Latin-1 byte
        {name: b"wrong"},
        {},
    ]
    clock, metrics = FakeWallClock(utc(2027, 1, 15, 8, 0, 0)), Metrics()
    async with telegram_world(
        tmp_path, telegram_webhook_url=url, telegram_webhook_secret=secret,
        telegram_webhook_listen="127.0.0.1", telegram_webhook_port=port,
    ) as w:  # fmt: skip
        user, chat = w.dm("Ann")
        async with _webhook_bot(w, metrics, clock), httpx.AsyncClient(timeout=10) as http:
            answers = await asyncio.gather(
                *(http.post(url, json=forged, headers=headers[i % len(headers)]) for i in range(100))
            )
            assert [a.status_code for a in answers] == [403] * 100
            assert captured_logs.getvalue().count("without the right secret token refused") == 1
            clock.advance(REFUSAL_LOG_SECONDS)
            assert (await http.post(url, json=forged, headers={name: b"\x80"})).status_code == 403
            w.tg.user_sends(chat, user, "still served?")  # Telegram's own push, with the secret
            await w.said(chat, lambda t: t == "Echo: still served?")
    logged = captured_logs.getvalue()
    refusals = [line for line in logged.splitlines() if "without the right secret token refused" in line]
    assert len(refusals) == 2 and "webhook: 100 request(s)" in refusals[1]  # the 99 held back, and this one
    assert "Traceback" not in logged and " ERROR " not in logged
    assert b"parley_webhook_rejected_total 101.0" in metrics.exposition()
    assert [status for _, status in w.tg.webhook.deliveries] == [200]
