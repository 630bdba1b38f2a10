"""Tools the chat model may call: the port (`Tool`), the registry, the loop of a reply, built-in tools."""

from core.tools.base import Draw, Tool, ToolContext, ToolFailed, ToolResult
from core.tools.image_tool import IMAGE_TOOL_NAME, ImageTool, image_drawer
from core.tools.loop import CallOutcome, Exchange, ToolLimits, ToolLoop, ToolRound
from core.tools.registry import ToolRegistry

__all__ = [
    "IMAGE_TOOL_NAME",
    "CallOutcome",
    "Draw",
    "Exchange",
    "ImageTool",
    "Tool",
    "ToolContext",
    "ToolFailed",
    "ToolLimits",
    "ToolLoop",
    "ToolRegistry",
    "ToolResult",
    "ToolRound",
    "image_drawer",
]
