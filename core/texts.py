"""What users read from every adapter, written once: usage, stats, "forgotten", access, model and failure texts.

Each function returns a `Text`: lines of plain spans and `Code` spans (a model name, an id), with no
markup of any platform. An adapter renders it for its own markup with `Text.render` (Telegram escapes its
Markdown, Discord its own, the terminal shows it as it is), so the wording cannot drift between platforms.

Pure: imports only core.errors at run time (whose base error carries the one generic failure line).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import ParleyError

if TYPE_CHECKING:
    from core.assistant import UsageReport
    from core.personas import SystemPrompt
    from core.store import Forgotten, Stats

GENERIC_FAILURE = ParleyError.default_message  # the one line for every failure we can't explain better
MAX_LISTED_MODELS = 50  # a longer list reads badly in a chat; /model NAME still takes any of them


@dataclass(frozen=True, slots=True)
class Code:
    """A span shown as code: a model name or an id, never reformatted."""

    text: str


Span = str | Code


@dataclass(frozen=True, slots=True)
class Text:
    """Lines of spans; plain spans are literal text (the renderer escapes them for its markup)."""

    lines: tuple[tuple[Span, ...], ...]

    def render(self, *, plain: Callable[[str], str], code: Callable[[str], str]) -> str:
        """The lines joined by newlines, each plain span through `plain` and each code span through `code`."""
        return "\n".join(
            "".join(code(span.text) if isinstance(span, Code) else plain(span) for span in line) for line in self.lines
        )

    def plain(self) -> str:
        """As it reads, without any markup (the terminal)."""
        return self.render(plain=str, code=str)


def size(count: int) -> str:
    """A byte count as people read it: "20 MB", "500 kB"."""
    return f"{count / 1_000_000:g} MB" if count >= 1_000_000 else f"{count // 1000} kB"


def image_too_large(max_bytes: int) -> str:
    return f"The image is too large (the limit is {size(max_bytes)})."


VOICE_OFF = "I can't listen to voice messages or audio here; please type your message."
NOTHING_HEARD = "I couldn't make out any words in that recording."
AUDIO_DOWNLOAD_FAILED = "The recording could not be downloaded; please send it again."


def duration(seconds: float) -> str:
    """A limit in seconds as people say it: "5 minutes", "90 seconds"."""
    whole = int(seconds)
    if whole >= 60 and whole % 60 == 0:
        minutes = whole // 60
        return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds:g} seconds"


def audio_too_long(max_seconds: float) -> str:
    return f"Voice messages and audio files can be up to {duration(max_seconds)} long; send a shorter one."


def audio_too_large(max_bytes: int) -> str:
    return f"Voice messages and audio files can be up to {size(max_bytes)}; send a smaller one."


def document_too_large(max_bytes: int) -> str:
    return f"That file is too large (at most {size(max_bytes)} per message, all files together)."


def document_download_failed() -> str:
    return "A file could not be downloaded; please send it again."


def document_unreadable(name: str) -> str:
    return f"I can read text files and PDFs; {name} is neither."


def pdf_encrypted(name: str) -> str:
    return f"{name} is password-protected; send a copy without the password."


def pdf_corrupt(name: str) -> str:
    return f"{name} could not be read: the PDF is damaged."


def pdf_without_text(name: str) -> str:
    return f"{name} has no text to read (a scan or only images?)."


def pdf_too_slow(name: str) -> str:
    return f"{name} took too long to read."


def document_cut(name: str, chars: int) -> str:
    if not chars:
        return f"{name} was not read: the other files used up the characters one message may hold."
    return f"Only the first {chars:,} characters of {name} were read."


def document_pages_cut(name: str, pages: int) -> str:
    return f"Only the first {pages:,} pages of {name} were read."


def _text(*lines: Span | tuple[Span, ...]) -> Text:
    return Text(tuple(line if isinstance(line, tuple) else (line,) for line in lines))


def reset_done() -> Text:
    return _text("New conversation started: earlier messages are no longer sent to the model.")


def model_set(model: str) -> Text:
    return _text(("Model set to ", Code(model), " for this conversation."))


def model_choices(current: str, choices: Sequence[str]) -> Text:
    if not choices:
        return _text(("Model: ", Code(current)))
    listed: list[Span] = ["Choices: "]
    for index, choice in enumerate(choices[:MAX_LISTED_MODELS]):
        listed += [", ", Code(choice)] if index else [Code(choice)]
    return _text(("Model: ", Code(current)), tuple(listed), "Switch this conversation with /model NAME.")


def system_prompt(result: SystemPrompt) -> Text:
    """What /system did. A shown prompt is plain spans, one per line: adapters escape it like any plain text."""
    if result.change == "set":
        return _text(
            f"System prompt set ({len(result.text):,} characters): it applies from the next message, also after /reset."
        )
    if result.change == "reset":
        return _text("System prompt back to the default from the next message.")
    origin = "set with /system; /system reset returns to the default" if result.custom else "the default"
    return _text(
        f"System prompt of this conversation ({origin}):", *result.text.split("\n"), "Change it with /system TEXT."
    )


def system_prompt_too_long(limit: int) -> str:
    return f"That system prompt is too long (the limit is {limit:,} characters)."


def usage(report: UsageReport) -> Text:
    """Reasoning tokens are part of the output tokens (OpenAI `completion_tokens_details`), shown apart."""
    c, t = report.conversation, report.today
    return _text(
        ("Model: ", Code(report.model)),
        f"This conversation: {c.total_tokens:,} tokens ({c.prompt_tokens:,} in, of them {c.cached_tokens:,} "
        f"cached; {c.completion_tokens:,} out, of them {c.reasoning_tokens:,} reasoning)",
        f"You today (UTC): {t.total_tokens:,} tokens in {t.requests:,} requests ({t.cached_tokens:,} cached, "
        f"{t.reasoning_tokens:,} reasoning)",
    )


def forgotten(report: Forgotten) -> Text:
    return _text(
        f"Done: I deleted {report.messages:,} messages, {report.conversations:,} conversations and your usage "
        "records. Messages of others in shared chats stay."
    )


def stats(report: Stats) -> Text:
    return _text(
        f"Users: {report.users:,}",
        f"Conversations: {report.conversations:,}",
        f"Tokens today (UTC): {report.tokens_today:,}",
        f"Failed replies today: {report.errors_today:,}",
    )


def access_changed(granted: bool, kind: str, subject_id: str) -> Text:
    verb = " now has access." if granted else " no longer has access."
    return _text((kind.capitalize() + " ", Code(subject_id.strip()), verb))
