"""Typed events of a reply, from the upstream stream to the adapters.

Frozen, slotted values only; this module imports nothing from the rest of core.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the visible answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning (`reasoning_content`, `reasoning` or `<think>`)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call, assembled from its streamed deltas."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolRunning:
    """Tools the model called are running now (their names, in call order); the answer goes on after."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Heard:
    """What a voice message said (its transcript, the user's turn), before the answer to it."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one upstream call; missing details are zero."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Finished:
    """The upstream said the answer is complete (`finish_reason`)."""

    reason: str


@dataclass(frozen=True, slots=True, repr=False)
class Image:
    """A validated image: raw bytes, their MIME type and the alt text the model gave it."""

    data: bytes
    mime: str
    alt: str = ""

    def __repr__(self) -> str:  # never megabytes in a log line
        return f"Image(mime={self.mime!r}, bytes={len(self.data)}, alt={self.alt!r})"

    @property
    def extension(self) -> str:
        return {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}.get(self.mime, "bin")


FINISH_NOTES = {
    "length": "The answer hit the length limit.",
    "max_tokens": "The answer hit the length limit.",  # Anthropic's stop_reason, passed on by some gateways
    "content_filter": "The provider filtered this answer.",
    "safety": "The provider filtered this answer.",  # Gemini's FinishReason.SAFETY, passed on by some gateways
    # Parley's own, not an upstream's: the model still called tools in the last round TOOL_MAX_ROUNDS allows.
    "tool_limit": "The model wanted more tool calls than allowed; its answer stopped there.",
}
"""The short notes users see after an answer that ended for these `finish_reason`s (lower-cased), in one place."""


@dataclass(frozen=True, slots=True)
class Completed:
    """Last event of a reply: the final answer text (images taken out) and the images found in it.

    `finish_reason` is the upstream's, as sent ("" for answers that had none, such as generated images).
    `notes` are the assistant's own about the question (a document cut short), shown with the answer.
    """

    text: str
    images: tuple[Image, ...] = field(default_factory=tuple)
    reasoning: str = ""
    finish_reason: str = ""
    notes: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        """A short note to show after the answer ("" when it ended normally), e.g. for a length cut."""
        return " ".join(filter(None, (*self.notes, FINISH_NOTES.get(self.finish_reason.lower(), ""))))


Event = TextDelta | ReasoningDelta | ToolCall | ToolRunning | Heard | Usage | Finished | Completed
"""What `UpstreamClient.stream` and `Assistant.reply` yield (`ToolRunning`, `Heard` and `Completed` only from the
assistant)."""
