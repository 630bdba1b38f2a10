"""Observe: /healthz and /metrics against a real SQLite store and the fake upstream; logs without content."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from core import (
    Assistant,
    Budget,
    ConversationKey,
    LiveReply,
    Metrics,
    Turn,
    UpstreamUnavailableError,
    UserRef,
    open_assistant,
    serve_metrics,
)
from core.logs import JsonFormatter, TextFormatter, configure_logging
from tests.e2e.support import API_KEY, free_port, make_settings
from tests.e2e.telegram_harness import telegram_world
from tests.fakes.clock import FakeWallClock, utc
from tests.fakes.live_surface import FakePlatform, FakeSurface
from tests.fakes.upstream import FakeUpstream
from tests.profiles import TELEGRAM_PRIVATE
from tests.unit.test_deploy import ROOT, health_check_command

pytestmark = pytest.mark.e2e

QUESTION = "my secret plan is ZEBRA-42"
ANSWER = "Here is the answer: PELICAN-17 and more."
USAGE = {
    "prompt_tokens": 21,
    "completion_tokens": 9,
    "total_tokens": 30,
    "prompt_tokens_details": {"cached_tokens": 5},
    "completion_tokens_details": {"reasoning_tokens": 3},
}


def _turn(text: str = QUESTION) -> Turn:
    return Turn(ConversationKey("telegram", "42"), UserRef("7", "Ann"), text)


def _fast_surface() -> FakeSurface:
    """Telegram's pace 50 times faster, on both sides: the engine's interval and the fake's clock."""
    profile = replace(TELEGRAM_PRIVATE, edit_interval_seconds=0.02, supports_draft=False)
    return FakeSurface(profile, platform=FakePlatform(speed=0.02))


async def _live_reply(assistant: Assistant, text: str = QUESTION) -> FakeSurface:
    surface = _fast_surface()
    live = LiveReply(surface, budget=Budget(30), on_first_text=assistant.first_text_hook())
    result = await live.run(assistant.reply(_turn(text)))
    assistant.count_rate_limits(live.rate_limited)
    assert result.is_complete
    return surface


def _sample(exposition: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", exposition, re.MULTILINE)
    assert match is not None, f"{name}{labels} missing"
    return float(match.group(1))


@pytest.fixture
def clock() -> FakeWallClock:
    """The assistant's wall clock (its quota windows, its health cache): moves only when a test moves it."""
    return FakeWallClock(utc(2027, 1, 15, 8, 0, 0))


@pytest.fixture
async def observed(
    upstream: FakeUpstream, tmp_path: Path, clock: FakeWallClock
) -> AsyncIterator[tuple[Assistant, httpx.AsyncClient]]:
    metrics = Metrics()
    settings = make_settings(upstream, tmp_path)
    async with (
        open_assistant(settings, metrics=metrics, clock=clock) as assistant,
        serve_metrics(metrics, assistant.health, host="127.0.0.1", port=0) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        yield assistant, client


async def _docker_health_check(client: httpx.AsyncClient) -> int:
    """Run the Dockerfile's HEALTHCHECK command (with this Python) against the endpoint; its exit status."""
    command = health_check_command((ROOT / "Dockerfile").read_text())
    env = {**os.environ, "METRICS_PORT": str(client.base_url.port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command[1:], env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await process.wait()


async def test_readyz_and_healthz_are_200_while_both_answer_and_503_naming_the_upstream_when_it_is_down(
    upstream: FakeUpstream, observed: tuple[Assistant, httpx.AsyncClient], clock: FakeWallClock
) -> None:
    _, client = observed
    for path in ("/readyz", "/healthz"):  # /healthz: the same answer, for deployments that probe it already
        response = await client.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": "ok", "upstream": "ok"}
    assert any(r.path.endswith("/models") for r in upstream.requests)

    await upstream.__aexit__(None, None, None)  # the gateway goes away
    clock.advance(15)  # the upstream's state is kept 15 s (tests/e2e/test_operations_abuse.py)
    for path in ("/readyz", "/healthz"):
        response = await client.get(path)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "failing" and body["database"] == "ok"
        assert body["upstream"] == "UpstreamUnavailableError"
        assert API_KEY not in response.text


async def test_livez_and_the_docker_health_check_stay_healthy_through_an_upstream_outage(
    upstream: FakeUpstream, observed: tuple[Assistant, httpx.AsyncClient], clock: FakeWallClock
) -> None:
    _, client = observed
    asked_at_start = len(upstream.requests)  # open_assistant may look the models up
    clock.advance(15)  # no upstream state cached: a probe that looked would ask now
    assert (await client.get("/livez")).status_code == 200
    assert await _docker_health_check(client) == 0
    assert len(upstream.requests) == asked_at_start  # /livez does no I/O

    await upstream.__aexit__(None, None, None)  # the gateway goes away: not a reason to restart Parley
    assert (await client.get("/readyz")).status_code == 503  # out of rotation...
    live = await client.get("/livez")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})  # ...but alive
    assert await _docker_health_check(client) == 0


async def test_livez_answers_while_a_readiness_check_hangs() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def hanging_health() -> dict[str, str]:  # stands for a database that does not answer
        started.set()
        await release.wait()
        return {"database": "ok"}

    async with (
        serve_metrics(Metrics(), hanging_health, port=0) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        ready = asyncio.create_task(client.get("/readyz"))
        await started.wait()
        live = await client.get("/livez")
        assert live.status_code == 200 and not ready.done()
        release.set()
        assert (await ready).status_code == 200


async def test_healthz_counts_a_gateway_without_models_as_reachable(
    upstream: FakeUpstream, observed: tuple[Assistant, httpx.AsyncClient]
) -> None:
    _, client = observed
    upstream.add_error(404, endpoint="models")
    response = await client.get("/healthz")
    assert response.status_code == 200, response.text


async def test_metrics_move_with_a_real_reply(
    upstream: FakeUpstream, observed: tuple[Assistant, httpx.AsyncClient]
) -> None:
    assistant, client = observed
    before = (await client.get("/metrics")).text
    assert _sample(before, "parley_replies_total", '{outcome="completed"}') == 0
    assert _sample(before, "parley_active_streams") == 0

    upstream.add_reply(ANSWER, usage=USAGE)
    surface = await _live_reply(assistant)
    assert surface.visible_texts() == [ANSWER]
    upstream.add_error(503, body={"error": {"message": "overloaded"}})
    with pytest.raises(UpstreamUnavailableError, match="503"):
        async for _ in assistant.reply(_turn("again")):
            pass

    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    assert _sample(after, "parley_replies_total", '{outcome="completed"}') == 1
    assert _sample(after, "parley_replies_total", '{outcome="failed"}') == 1
    assert _sample(after, "parley_tokens_total", '{kind="prompt"}') == 21
    assert _sample(after, "parley_tokens_total", '{kind="completion"}') == 9
    assert _sample(after, "parley_tokens_total", '{kind="cached"}') == 5
    assert _sample(after, "parley_tokens_total", '{kind="reasoning"}') == 3
    assert _sample(after, "parley_first_token_seconds_count") == 1
    assert _sample(after, "parley_first_visible_text_seconds_count") == 1
    assert _sample(after, "parley_upstream_errors_total", '{kind="UpstreamUnavailableError"}') == 1
    assert _sample(after, "parley_platform_rate_limits_total") == 0
    assert _sample(after, "parley_active_streams") == 0


def test_metrics_of_two_processes_do_not_share_a_registry() -> None:
    first, second = Metrics(), Metrics()
    first.rate_limited(2)
    assert b"parley_platform_rate_limits_total 2.0" in first.exposition()
    assert b"parley_platform_rate_limits_total 0.0" in second.exposition()


# --- logs ------------------------------------------------------------------------------------------------


async def _logged_reply(upstream: FakeUpstream, tmp_path: Path, *, log_content: bool) -> str:
    """One reply with LOG_LEVEL=DEBUG LOG_FORMAT=json, configured as `parley run` does; returns the log."""
    stream = io.StringIO()
    configure_logging("DEBUG", log_format="json", log_content=log_content, stream=stream)
    upstream.add_reply(ANSWER, usage=USAGE)
    settings = make_settings(upstream, tmp_path, log_content=log_content)
    async with open_assistant(settings, metrics=Metrics()) as assistant:
        await _live_reply(assistant)
    return stream.getvalue()


@pytest.mark.usefixtures("restored_logging")
async def test_logs_hold_no_message_text_nor_secret_by_default(upstream: FakeUpstream, tmp_path: Path) -> None:
    logged = await _logged_reply(upstream, tmp_path, log_content=False)
    records = [json.loads(line) for line in logged.splitlines()]
    done = [r for r in records if r["message"].startswith("reply done")]
    assert len(done) == 1 and done[0]["level"] == "INFO" and done[0]["logger"] == "core.assistant"
    assert re.fullmatch(r"[0-9a-f]{16}", done[0]["request"]) and done[0]["conversation"].isdigit()
    for secret in ("ZEBRA-42", "PELICAN-17", API_KEY, API_KEY[-12:]):
        assert secret not in logged


@pytest.mark.usefixtures("restored_logging")
async def test_log_content_true_lets_the_text_into_debug_logs(upstream: FakeUpstream, tmp_path: Path) -> None:
    logged = await _logged_reply(upstream, tmp_path, log_content=True)
    ours = [r["message"] for r in map(json.loads, logged.splitlines()) if r["logger"] == "core.assistant"]
    # So the default's absence above means something: the same reply, the text now logged.
    assert any("ZEBRA-42" in line for line in ours) and any("PELICAN-17" in line for line in ours)
    assert API_KEY not in logged


@pytest.mark.usefixtures("restored_logging")
def test_configure_logging_picks_the_format() -> None:
    root = logging.getLogger()
    configure_logging("INFO", log_format="json")
    assert [type(h.formatter) for h in root.handlers] == [JsonFormatter]
    assert root.level == logging.INFO
    stream = io.StringIO()
    configure_logging("DEBUG", log_format="text", stream=stream)
    assert [type(h.formatter) for h in root.handlers] == [TextFormatter]
    logging.getLogger("parley.test").info("hello %s", "there")
    assert re.fullmatch(r"\S+ \S+ INFO parley.test: hello there\n", stream.getvalue())


async def test_first_visible_text_is_the_answer_not_the_thinking_label(upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.add_reply(
        ANSWER, reasoning="Let me think about zebras for a while. " * 3, chunk_chars=8, tokens_per_second=200
    )
    seen: list[list[str]] = []
    async with open_assistant(make_settings(upstream, tmp_path)) as assistant:
        surface = _fast_surface()
        live = LiveReply(
            surface,
            budget=Budget(30),
            show_reasoning="status",
            on_first_text=lambda: seen.append(surface.visible_texts()),
        )
        result = await live.run(assistant.reply(_turn()))
    assert result.is_complete and surface.visible_texts() == [ANSWER]
    first_sent = surface.calls("send")[0].rendered
    assert first_sent is not None and "PELICAN" not in first_sent.text  # a "thinking" state came first
    assert len(seen) == 1  # once, however many edits followed
    assert seen[0] and seen[0][0] and ANSWER.startswith(seen[0][0].rstrip("…. "))  # answer text, not the label
    assert assistant.first_text_hook() is None  # without Metrics the adapters pass no hook


def _listen_addresses(port: int) -> set[str]:
    """Addresses with a socket listening on `port`, as the Linux kernel lists them in /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: TCP_LISTEN
                raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(socket.inet_ntop(family, raw))
    return found


async def _metrics_once_counted(client: httpx.AsyncClient) -> str:
    """/metrics once the reply is counted: the process counts it just after its last call to Telegram, which
    the test sees first (another process, no event to wait on, so poll; bounded)."""
    async with asyncio.timeout(10):
        while True:
            exposition = (await client.get("/metrics")).text
            if _sample(exposition, "parley_replies_total", '{outcome="completed"}') and _sample(
                exposition, "parley_first_visible_text_seconds_count"
            ):
                return exposition
            await asyncio.sleep(0.05)


async def test_parley_run_serves_metrics_that_count_a_telegram_reply(tmp_path: Path) -> None:
    """The composition root end to end: METRICS_PORT set, a real `parley run telegram`, one chat message."""
    port = free_port()
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.parley_run(tmp_path, METRICS_PORT=str(port), LOG_FORMAT="json") as process:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                assert (await client.get("/livez")).status_code == 200
                assert (await client.get("/readyz")).status_code == 200
                assert _listen_addresses(port) == {"127.0.0.1"}  # METRICS_LISTEN unset: this host only
                w.tg.user_sends(chat, user, "count me")
                await w.said(chat, lambda t: t == "Echo: count me")
                exposition = await _metrics_once_counted(client)
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0
    assert _sample(exposition, "parley_replies_total", '{outcome="completed"}') == 1
    assert _sample(exposition, "parley_first_visible_text_seconds_count") == 1  # the adapter passed the hook
    assert _sample(exposition, "parley_platform_rate_limits_total") == 0
    lines = [json.loads(line) for line in (out + err).decode().splitlines()]
    assert any(line["message"].startswith("metrics and probes on port") for line in lines)
    assert any(line["message"].startswith("reply done") and "request" in line for line in lines)
