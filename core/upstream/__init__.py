"""The OpenAI-compatible upstream: `UpstreamClient` (HTTP, retries, error mapping) and its `Completion`."""

from core.upstream.chunks import Completion, Transcript
from core.upstream.client import UpstreamClient
from core.upstream.guard import ByteBudget

__all__ = ["ByteBudget", "Completion", "Transcript", "UpstreamClient"]
