"""`generate_image`: the chat model draws mid-conversation with IMAGE_MODEL.

The picture goes to the user with the reply; the model reads only a short confirmation, never the image
bytes. The tool itself holds nothing: the `draw` capability in its `ToolContext` (built by `image_drawer`
for one reply) calls the image model with the user's identity and charges the usage to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from core.errors import QuotaExceededError
from core.events import Image, Usage
from core.images import Download, extract_images, to_data_url
from core.inputs import is_blank
from core.tools.base import Draw, ToolContext, ToolFailed, ToolResult
from core.upstream import UpstreamClient

IMAGE_TOOL_NAME = "generate_image"


class ImageTool:
    """Draws a picture from a prompt, with the conversation's latest images as references if asked."""

    name = IMAGE_TOOL_NAME
    description = (
        "Generate an image from a text prompt and show it to the user in this reply. Use it when the user "
        "asks for a picture, drawing or illustration. The result only confirms that the image was shown."
    )
    parameters: Mapping[str, object] = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "description": "What to draw, in detail."},
            "use_images": {
                "type": "boolean",
                "description": "Use the images the user just sent or replied to as references (default true).",
            },
        },
        "required": ["prompt"],
    }

    async def run(self, arguments: Mapping[str, object], context: ToolContext) -> ToolResult:
        prompt = arguments.get("prompt")
        if not isinstance(prompt, str) or is_blank(prompt):
            raise ToolFailed("`prompt` (a non-empty string) is required")
        if context.draw is None:
            raise ToolFailed("image generation is not available")
        references = context.images if arguments.get("use_images", True) is not False else ()
        images = await context.draw(prompt.strip(), references)
        shown = "an image was" if len(images) == 1 else f"{len(images)} images were"
        return ToolResult(f"Done: {shown} shown to the user.", images=images)


def image_drawer(
    *,
    upstream: UpstreamClient,
    model: str,
    upstream_user: str,
    max_prompt_chars: int,
    image_max_bytes: int,
    download: Download,
    deadline_seconds: float,
    admit: Callable[[], Awaitable[None]],
    on_usage: Callable[[Usage], Awaitable[None]],
) -> Draw:
    """The `draw` capability of one reply (the same request as `/imagine`: prompt and references).

    `admit` counts the drawing against the user's limits as `/imagine` does (QuotaExceededError when over
    them): the model then reads that the picture was not drawn, and the user still gets its answer."""

    async def draw(prompt: str, references: Sequence[Image]) -> tuple[Image, ...]:
        if len(prompt) > max_prompt_chars:
            raise ToolFailed(f"the prompt is longer than {max_prompt_chars} characters")
        try:
            await admit()
        except QuotaExceededError as exc:  # its detail is ours ("requests per minute"), never upstream words
            raise ToolFailed(f"not drawn: the user has reached a usage limit ({exc})") from None
        content: str | list[dict[str, Any]] = prompt
        if references:
            content = [{"type": "text", "text": prompt}]
            content += [{"type": "image_url", "image_url": {"url": to_data_url(image)}} for image in references]
        completion = await upstream.complete(
            model=model, messages=[{"role": "user", "content": content}], user=upstream_user
        )
        if completion.usage is not None:
            await on_usage(completion.usage)
        extracted = await extract_images(
            completion.text,
            completion.image_urls,
            max_bytes=image_max_bytes,
            download=download,
            deadline_seconds=deadline_seconds,
        )
        if not extracted.images:
            raise ToolFailed("the image model returned no image")
        return extracted.images

    return draw
