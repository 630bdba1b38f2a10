"""What is sent upstream: the system prompt, then as much history as fits the budget. Pure; no I/O.

Token counts are estimates (about four characters a token, a flat cost per image): the budget is a
guard against overflowing the model's context, not an invoice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.documents import has_documents, without_documents
from core.events import ToolCall

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators, per message
IMAGE_TOKENS = 800  # roughly one high-detail tile set; images are the expensive part
OLD_IMAGE_PLACEHOLDER = "[an image was shared here]"


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One stored message as the context builder sees it."""

    role: str
    text: str
    parts: Sequence[dict[str, Any]] | None = None
    author: str = ""
    image_count: int = 0  # images the turn had; those missing from `parts` are no longer stored
    # An assistant message's calls; for a "tool" message, the one call it answers (its id and name).
    tool_calls: Sequence[ToolCall] = ()


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + MESSAGE_OVERHEAD_TOKENS


def tool_call_message(text: str, calls: Sequence[ToolCall]) -> dict[str, Any]:
    """An assistant message that called tools, as the upstream expects it back (OpenAI format)."""
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in calls
        ],
    }


def tool_result_message(call_id: str, text: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def build_context(
    *,
    system_prompt: str,
    history: Sequence[HistoryItem],
    budget_tokens: int,
    image_turns: int,
    name_prefix: bool = False,
    discussion: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Upstream `messages` for the newest item of `history` (the user's new message).

    The system prompt and the newest message always go; earlier messages are added newest first while
    they fit `budget_tokens`. User images older than the last `image_turns` user turns become a short
    text placeholder. `discussion` (recent group lines the bot only overheard) goes just before the
    question. `name_prefix` writes "name: text" for user messages of a shared group conversation.
    """
    if not history:
        raise ValueError("history must end with the new user message")
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    spent = estimate_tokens(system_prompt) if system_prompt else 0
    before_question: list[dict[str, Any]] = []
    if discussion:
        lines = "\n".join(discussion)
        before_question.append({"role": "system", "content": f"Recent messages in this chat, for context:\n{lines}"})
        spent += estimate_tokens(lines)

    chosen = _fitting(history, budget_tokens - spent, image_turns=image_turns, name_prefix=name_prefix)
    while len(chosen) > 1 and chosen[-1]["role"] == "tool":  # the oldest kept: results without their call
        chosen.pop()
    chosen.reverse()
    return [*system, *chosen[:-1], *before_question, chosen[-1]]


@dataclass(slots=True)
class _Candidate:
    message: dict[str, Any]
    cost: int
    with_documents: tuple[dict[str, Any], int] | None = None  # the full message, when its documents are folded


def _fitting(
    history: Sequence[HistoryItem], budget_tokens: int, *, image_turns: int, name_prefix: bool
) -> list[dict[str, Any]]:
    """The newest messages that fit `budget_tokens`, newest first; the newest always, in full.

    Documents go before turns: older messages are first taken with their documents folded into a
    placeholder, then documents are put back newest first while they fit, so an older document is
    trimmed before a newer one and before any turn is dropped.
    """
    candidates: list[_Candidate] = []
    spent = 0
    user_turns_seen = 0
    for index, item in enumerate(reversed(history)):
        if index > 0 and _is_empty_answer(item):
            continue  # an answer cut short before any text, after its tool rounds: nothing to send
        keep_images = index == 0 or user_turns_seen < image_turns
        message, cost = _to_upstream(item, keep_images=keep_images, name_prefix=name_prefix)
        candidate = _Candidate(message, cost)
        if index > 0 and item.role == "user" and has_documents(item.text):
            folded = replace(item, text=without_documents(item.text))
            candidate = _Candidate(*_to_upstream(folded, keep_images=keep_images, name_prefix=name_prefix))
            candidate.with_documents = (message, cost)
        if item.role == "user":
            user_turns_seen += 1
        if index > 0 and spent + candidate.cost > budget_tokens:
            break
        spent += candidate.cost
        candidates.append(candidate)
    for candidate in candidates:
        if candidate.with_documents is None:
            continue
        message, cost = candidate.with_documents
        if spent + cost - candidate.cost > budget_tokens:
            break  # this one and every older document stay folded
        spent += cost - candidate.cost
        candidate.message = message
    return [candidate.message for candidate in candidates]


def _is_empty_answer(item: HistoryItem) -> bool:
    return item.role == "assistant" and not item.text and not item.tool_calls and not item.parts


def _to_upstream(item: HistoryItem, *, keep_images: bool, name_prefix: bool) -> tuple[dict[str, Any], int]:
    if item.role == "tool" and item.tool_calls:
        return tool_result_message(item.tool_calls[0].id, item.text), estimate_tokens(item.text)
    if item.role == "assistant" and item.tool_calls:
        arguments = sum(len(call.name) + len(call.arguments) for call in item.tool_calls)
        return tool_call_message(item.text, item.tool_calls), estimate_tokens(item.text) + arguments // CHARS_PER_TOKEN
    text = f"{item.author}: {item.text}" if name_prefix and item.role == "user" and item.author else item.text
    found = [part for part in item.parts or () if part.get("type") == "image_url"]
    images = found if keep_images else []
    if len(images) < max(item.image_count, len(found)):
        # Outside the window, or no longer stored (storage keeps the same window; or its author's /forget).
        text = f"{text}\n{OLD_IMAGE_PLACEHOLDER}" if text else OLD_IMAGE_PLACEHOLDER
    if not images:
        return {"role": item.role, "content": text}, estimate_tokens(text)
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content.extend(images)
    return {"role": item.role, "content": content}, estimate_tokens(text) + IMAGE_TOKENS * len(images)
