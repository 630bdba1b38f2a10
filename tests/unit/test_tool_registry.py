"""The tool registry: names as OpenAI allows them, namespaces that keep sources apart, the request's `tools`."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from core.tools import ImageTool, ToolContext, ToolRegistry, ToolResult


class Named:
    def __init__(self, name: str) -> None:
        self.name = name
        self.description = "d"
        self.parameters: Mapping[str, object] = {}

    async def run(self, arguments: Mapping[str, object], context: ToolContext) -> ToolResult:
        return ToolResult("ok")


def test_a_namespaced_tool_cannot_shadow_a_built_in_one() -> None:
    registry = ToolRegistry([ImageTool()])
    assert registry.register(Named("generate_image"), namespace="files") == "files__generate_image"
    assert registry.names() == ["generate_image", "files__generate_image"]
    with pytest.raises(ValueError, match="twice"):
        registry.register(Named("generate_image"), namespace="files")
    with pytest.raises(ValueError, match="invalid"):
        registry.register(Named("files__generate_image"))  # only a namespace may use the separator


@pytest.mark.parametrize("name", ["", "has space", "ünïcode", "x" * 65, "semi;colon"])
def test_names_outside_openais_rule_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        ToolRegistry([Named(name)])


def test_specs_are_openai_function_tools_with_an_object_schema() -> None:
    [spec] = ToolRegistry([Named("t")]).specs()
    assert spec == {
        "type": "function",
        "function": {"name": "t", "description": "d", "parameters": {"type": "object", "properties": {}}},
    }
