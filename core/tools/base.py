"""The tool port: what a tool the chat model may call looks like, whatever provides it.

A tool is anything with a name, a description, JSON-schema parameters and an async `run`. Built-in tools
(`generate_image`) implement it here; an MCP server's tools can later be wrapped the same way and
registered under their server's namespace (core.tools.registry). A tool gets its arguments (parsed,
untrusted model output) and a `ToolContext` holding only what a tool of a reply may use: never the API
key, the store or the upstream client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.events import Image

Draw = Callable[[str, Sequence[Image]], Awaitable[tuple[Image, ...]]]
"""Generate images for a prompt, given reference images (IMAGE_MODEL, its usage charged to the user)."""


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What the tools of one reply may use: the images of the conversation's turn, and capabilities."""

    images: Sequence[Image] = ()  # the turn's images, and the quoted message's (as `/imagine` gets them)
    draw: Draw | None = None  # None when no image model is set


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool gives back: text for the model, images for the user (never sent to the model)."""

    text: str
    images: tuple[Image, ...] = field(default_factory=tuple)
    is_error: bool = False


class ToolFailed(Exception):
    """A tool's own, expected failure; its message (short, no secrets) is what the model reads."""


class Tool(Protocol):
    """A tool the chat model may call. `parameters` is a JSON schema of an object."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, object]: ...

    async def run(self, arguments: Mapping[str, object], context: ToolContext) -> ToolResult: ...
