"""The tools offered to the chat model, under unique names.

Names follow OpenAI's function-name rule (letters, digits, `_` and `-`, at most 64; see
https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools). Tools from a source other
than Parley itself (an MCP server) are registered with a `namespace`: they are offered as
`namespace__name`, so two sources can never shadow each other or a built-in tool. A namespace's tools come
and go with their source (a server that drops and comes back); the tool loop reads the registry afresh
for every request, and every change is one synchronous step, so a reply never sees half a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.tools.base import Tool

NAME_MAX_CHARS = 64
NAMESPACE_SEPARATOR = "__"


def valid_name(name: str) -> bool:
    """OpenAI's rule for function names: ^[a-zA-Z0-9_-]{1,64}$ (checked without a regex: linear, obviously)."""
    return 0 < len(name) <= NAME_MAX_CHARS and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)


class ToolRegistry:
    """Tools by the name the model calls them; namespaced ones may be withdrawn and registered again."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._namespaces: dict[str, str] = {}  # name -> namespace, for the namespaced tools
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool, *, namespace: str = "") -> str:
        """Add `tool`; return the name the model sees. ValueError on a bad or taken name."""
        name = f"{namespace}{NAMESPACE_SEPARATOR}{tool.name}" if namespace else tool.name
        if not valid_name(name) or (not namespace and NAMESPACE_SEPARATOR in name):
            raise ValueError(f"invalid tool name {name!r}")
        if name in self._tools:
            raise ValueError(f"tool {name!r} is registered twice")
        self._tools[name] = tool
        if namespace:
            self._namespaces[name] = namespace
        return name

    def unregister_namespace(self, namespace: str) -> None:
        """Withdraw every tool registered under `namespace`."""
        for name in [name for name, source in self._namespaces.items() if source == namespace]:
            del self._tools[name], self._namespaces[name]

    def __bool__(self) -> bool:
        return bool(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        """The request's `tools` field (OpenAI format)."""
        return [
            {
                "type": "function",
                "function": {"name": name, "description": tool.description, "parameters": _schema(tool.parameters)},
            }
            for name, tool in self._tools.items()
        ]


def _schema(parameters: Mapping[str, object]) -> dict[str, Any]:
    return dict(parameters) if parameters else {"type": "object", "properties": {}}
