"""Prometheus metrics and the health + `/metrics` HTTP endpoint (METRICS_PORT): `/livez`, `/readyz`, `/healthz`.

`Metrics` owns a per-process `CollectorRegistry` (no import-time globals): the composition root builds one,
hands it to the assistant and serves it with `serve_metrics`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from core.events import Usage

Outcome = Literal["completed", "failed", "cancelled"]
HealthCheck = Callable[[], Awaitable[Mapping[str, str]]]

# Seconds: chat latency lives between a tenth of a second and the upstream's timeout.
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0)
_LIVE_BODY = json.dumps({"status": "ok"})


class Metrics:
    """The counters of one process. Every method is cheap and never raises."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.replies = Counter("parley_replies", "Replies by outcome.", ["outcome"], registry=r)
        self.tokens = Counter("parley_tokens", "Tokens reported by the upstream, by kind.", ["kind"], registry=r)
        self.first_token = Histogram(
            "parley_first_token_seconds",
            "Upstream request to its first streamed token.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.first_text = Histogram(
            "parley_first_visible_text_seconds",
            "Reply shown on the platform: start to first visible answer text.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "parley_upstream_errors", "Upstream failures by kind (error class).", ["kind"], registry=r
        )
        self.platform_rate_limits = Counter(
            "parley_platform_rate_limits", "429 answers from the chat platform.", registry=r
        )
        self.active_streams = Gauge("parley_active_streams", "Replies streaming right now.", registry=r)
        self.webhook_rejected = Counter(
            "parley_webhook_rejected", "Webhook requests refused for a missing or wrong secret token.", registry=r
        )
        for outcome in ("completed", "failed", "cancelled"):
            self.replies.labels(outcome)  # present at 0 from the start, so rates work on the first scrape
        for kind in ("prompt", "completion", "cached", "reasoning"):
            self.tokens.labels(kind)

    def reply_ended(self, outcome: Outcome) -> None:
        self.replies.labels(outcome).inc()

    def add_usage(self, usage: Usage) -> None:
        self.tokens.labels("prompt").inc(usage.prompt_tokens)
        self.tokens.labels("completion").inc(usage.completion_tokens)
        self.tokens.labels("cached").inc(usage.cached_tokens)
        self.tokens.labels("reasoning").inc(usage.reasoning_tokens)

    def upstream_error(self, kind: str) -> None:
        self.upstream_errors.labels(kind).inc()

    def rate_limited(self, count: int = 1) -> None:
        if count > 0:
            self.platform_rate_limits.inc(count)

    def webhook_refused(self) -> None:
        self.webhook_rejected.inc()

    def first_text_timer(self) -> Callable[[], None]:
        """A callback for `LiveReply(on_first_text=...)`: observes the time since this call, once."""
        started = time.monotonic()
        done = False

        def observe() -> None:
            nonlocal done
            if not done:
                done = True
                self.first_text.observe(time.monotonic() - started)

        return observe

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@asynccontextmanager
async def serve_metrics(
    metrics: Metrics, health: HealthCheck, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[int]:
    """Serve the probes and `/metrics` for the life of the block; yields the bound port (port 0: any free).

    `/livez`: the process is up and its event loop answers; no I/O, so an outage of the database or the
    upstream never gets a healthy process restarted. `/readyz`: the database and the upstream answer
    (`health`, the upstream's state cached in core.health), 503 naming the failing part otherwise: the
    process is taken out of rotation until they do. `/healthz`: the same as `/readyz`, kept for deployments
    that already probe it.
    """

    async def livez(_: web.Request) -> web.Response:
        return web.Response(text=_LIVE_BODY, content_type="application/json")

    async def readyz(_: web.Request) -> web.Response:
        parts = dict(await health())
        healthy = all(state == "ok" for state in parts.values())
        return web.Response(
            status=200 if healthy else 503,
            text=json.dumps({"status": "ok" if healthy else "failing", **parts}),
            content_type="application/json",
        )

    async def exposition(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", readyz)  # the Dockerfile's probe until /livez came
    app.router.add_get("/metrics", exposition)
    runner = web.AppRunner(app, access_log=None)  # a scrape every few seconds is not worth a log line
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        yield int(bound)
    finally:
        await runner.cleanup()
