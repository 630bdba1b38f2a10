"""Request parameters of the fake Bot API: JSON-in-form decoding and typed access with Telegram's errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .objects import bad_request

_JSON_PARAMS = frozenset(
    {
        "entities", "caption_entities", "reply_markup", "reply_parameters", "media", "commands", "scope",
        "allowed_updates", "link_preview_options", "message_ids",
    }
)  # fmt: skip


def decode_params(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Form values arrive as strings; the object-valued parameters are JSON inside them."""
    out = dict(raw)
    for key in _JSON_PARAMS & out.keys():
        if isinstance(out[key], str):
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                raise bad_request(f"can't parse {key} JSON object") from None
    return out


class Params:
    """Typed access to one request's parameters; a missing required one is a 400 like Telegram's."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def require(self, name: str) -> Any:
        value = self.values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        return value

    def integer(self, name: str) -> int:
        value = self.opt_integer(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        return value

    def opt_integer(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"wrong parameter {name} specified") from None

    def opt_text(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else str(value)

    def flag(self, name: str) -> bool:
        return self.values.get(name) in (True, "true", "True", "1", 1)
