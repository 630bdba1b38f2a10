"""The words the Telegram bot says itself (commands, hints, errors), as Markdown for core.live to render.

The texts every platform shares come from `core.texts` and are only rendered here; what is Telegram's
own (the command menu, /start, /help) is written here. Pure: builds strings from `core` values; no PTB calls.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core import Forgotten, Stats, SystemPrompt, UsageReport
from core import texts as words

GENERIC_ERROR = words.GENERIC_FAILURE
UNSUPPORTED = (
    "I can read text and photos (and text files and PDFs); this kind of message is not something I can answer."
)
EDITED = "I only see new messages: send the corrected text as a new message."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."

# (command, description) for setMyCommands; descriptions are 1-256 characters (Bot API BotCommand).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "What this bot does"),
    ("help", "How to use this bot"),
    ("reset", "Start a new conversation"),
    ("model", "Show the model, or switch: /model NAME"),
    ("system", "Show the system prompt, or set it: /system TEXT"),
    ("imagine", "Draw a picture: /imagine PROMPT"),
    ("usage", "Tokens used here and today"),
)

# Handled but kept out of the command menu: /forget is for the few who ask, the rest are for admins.
HIDDEN_COMMANDS: tuple[str, ...] = ("forget", "stats", "grant", "revoke")


def plain(text: str) -> str:
    """`text` escaped so that Markdown shows it exactly as it is: every ASCII punctuation mark but `[`, `(`
    and `)`, because telegramify-markdown reads `\\(…\\)` and `\\[…\\]` as LaTeX (a code block, the
    punctuation gone); an escaped `]` already keeps `[…](…)` from being a link."""
    return re.sub(r"([!-'*-/:-@\\\]-`{-~])", r"\\\1", text)


def code(text: str) -> str:
    return f"`{text.replace('`', '')}`"


def start(first_name: str, *, username: str, image_model: bool) -> str:
    lines = [
        f"Hi {plain(first_name)}! I'm an AI assistant. Send me a message or a photo and I'll answer; "
        "I remember the conversation until you /reset it."
    ]
    if image_model:
        lines.append("I can also draw: /imagine a lighthouse at dusk.")
    lines.append(f"In groups, mention @{plain(username)} or reply to one of my messages. /help lists everything.")
    return "\n\n".join(lines)


def help_text(*, username: str, image_model: bool) -> str:
    commands = [f"/{name} — {plain(description)}" for name, description in COMMANDS]
    if not image_model:
        commands = [line for line in commands if not line.startswith("/imagine")]
    return (
        "Send a message (or a photo with a question) and I'll answer it.\n\n"
        + "\n".join(commands)
        + f"\n\nIn groups I answer when you mention @{plain(username)}, reply to one of my messages, "
        "or use a command."
    )


def markdown(text: words.Text) -> str:
    """A core text as Markdown for core.live: plain spans escaped, code spans as code."""
    return text.render(plain=plain, code=code)


def model_choices(current: str, choices: Sequence[str]) -> str:
    return markdown(words.model_choices(current, choices))


def model_set(model: str) -> str:
    return markdown(words.model_set(model))


def system_prompt(result: SystemPrompt) -> str:
    return markdown(words.system_prompt(result))


def reset_done() -> str:
    return markdown(words.reset_done())


def usage(report: UsageReport) -> str:
    return markdown(words.usage(report))


def error(message: str) -> str:
    return "⚠️ " + plain(message)


def forgotten(report: Forgotten) -> str:
    return markdown(words.forgotten(report))


def stats(report: Stats) -> str:
    return markdown(words.stats(report))


def access_changed(granted: bool, kind: str, subject_id: str) -> str:
    return markdown(words.access_changed(granted, kind, subject_id))
