"""The words the Telegram bot says itself (commands, hints, errors), as Markdown for core.live to render.

Pure: builds strings from `core` values; no PTB calls.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core import Forgotten, Stats, UsageReport

GENERIC_ERROR = "Something went wrong; that message was not answered. Please try again."
UNSUPPORTED = "I can read text and photos; this kind of message is not something I can answer."
EDITED = "I only see new messages: send the corrected text as a new message."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."

# (command, description) for setMyCommands; descriptions are 1-256 characters (Bot API BotCommand).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "What this bot does"),
    ("help", "How to use this bot"),
    ("reset", "Start a new conversation"),
    ("model", "Show the model, or switch: /model NAME"),
    ("imagine", "Draw a picture: /imagine PROMPT"),
    ("usage", "Tokens used here and today"),
)

# Handled but kept out of the command menu: /forget is for the few who ask, the rest are for admins.
HIDDEN_COMMANDS: tuple[str, ...] = ("forget", "stats", "grant", "revoke")


def plain(text: str) -> str:
    """`text` escaped so that Markdown shows it exactly as it is (every ASCII punctuation mark escaped)."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def code(text: str) -> str:
    return f"`{text.replace('`', '')}`"


def start(first_name: str, *, username: str, image_model: bool) -> str:
    lines = [
        f"Hi {plain(first_name)}! I'm an AI assistant. Send me a message or a photo and I'll answer; "
        "I remember the conversation until you /reset it."
    ]
    if image_model:
        lines.append("I can also draw: /imagine a lighthouse at dusk.")
    lines.append(
        f"In groups, mention @{plain(username)} or reply to one of my messages. /help lists everything."
    )
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


def model_choices(current: str, choices: Sequence[str]) -> str:
    text = f"Model: {code(current)}"
    if choices:
        text += "\nChoices: " + ", ".join(code(choice) for choice in choices[:50])
        text += "\nSwitch this conversation with /model NAME."
    return text


def model_set(model: str) -> str:
    return f"This conversation now uses {code(model)}."


def reset_done() -> str:
    return "Started a new conversation; I no longer see the earlier messages."


def usage(report: UsageReport) -> str:
    c, t = report.conversation, report.today
    return (
        f"Model: {code(report.model)}\n"
        f"This conversation: {c.total_tokens:,} tokens ({c.prompt_tokens:,} in, "
        f"of them {c.cached_tokens:,} cached; "
        f"{c.completion_tokens:,} out)\n"
        f"You today (UTC): {t.total_tokens:,} tokens in {t.requests:,} requests ({t.cached_tokens:,} cached)"
    )


def error(message: str) -> str:
    return "⚠️ " + plain(message)


def forgotten(report: Forgotten) -> str:
    return (
        f"Done: I deleted {report.messages:,} messages, {report.conversations:,} conversations and your usage "
        "records. Messages of others in shared groups stay."
    )


def stats(report: Stats) -> str:
    return (
        f"Users: {report.users:,}\nConversations: {report.conversations:,}\n"
        f"Tokens today (UTC): {report.tokens_today:,}\nFailed replies today: {report.errors_today:,}"
    )


def access_changed(granted: bool, kind: str, subject_id: str) -> str:
    verb = "now has" if granted else "no longer has"
    return f"{plain(kind.capitalize())} {code(subject_id)} {verb} access."
