"""Generated images inside an assistant message: find, fetch, validate. Imports no HTTP library.

Three forms are recognised: markdown images with `data:` URLs, markdown images with http(s) URLs
(fetched through the `download` callable the caller passes), and OpenRouter-style
`message.images[].image_url.url`. Every image is checked by its magic bytes and against a byte cap.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from core.errors import ImageError
from core.events import Image
from core.texts import image_too_large

Download = Callable[[str], Awaitable[bytes]]
"""Fetches an http(s) URL with a timeout and a byte cap; raises ImageError."""

# ![alt](url "title") with the URL optionally in <...>; base64 may be wrapped over lines.
_MARKDOWN_IMAGE = re.compile(
    r"!\[(?P<alt>[^\]\n]*)\]\(\s*<?(?P<url>data:[^)\s>]*(?:\s+[A-Za-z0-9+/=]+)*|https?://[^)\s>]+)>?"
    r"(?:\s+\"[^\"]*\")?\s*\)"
)
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^;,]*)*),(?P<payload>.*)", re.DOTALL)


def sniff_mime(data: bytes) -> str | None:
    """The image type the bytes really are (png, jpeg, webp, gif), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


def validate_image(data: bytes, *, max_bytes: int, alt: str = "") -> Image:
    """Check the size cap and the magic bytes; the MIME type comes from the bytes, not from a claim."""
    if len(data) > max_bytes:
        raise ImageError(
            f"image of {len(data)} bytes over the {max_bytes} cap",
            user_message=image_too_large(max_bytes),
        )
    mime = sniff_mime(data)
    if mime is None:
        raise ImageError(
            "bytes are not a png, jpeg, webp or gif", user_message="The model sent something that is not an image."
        )
    return Image(data=data, mime=mime, alt=alt)


def validate_user_image(data: bytes, *, max_bytes: int, alt: str = "") -> Image:
    """`validate_image` for an image a user sent: another type (SVG, BMP, HEIC...) is refused as such."""
    if sniff_mime(data) is None:
        raise ImageError(
            "a user image that is not a png, jpeg, webp or gif",
            user_message="This image type is not supported; send a PNG, JPEG, WebP or GIF.",
        )
    return validate_image(data, max_bytes=max_bytes, alt=alt)


def decode_data_url(url: str, *, max_bytes: int, alt: str = "") -> Image:
    """Decode a base64 `data:` URL into a validated image; refuse oversize payloads before decoding."""
    match = _DATA_URL.fullmatch(url.strip())
    if match is None or ";base64" not in match["params"].lower():
        raise ImageError("not a base64 data URL", user_message="The model sent an image in a form we cannot read.")
    payload = "".join(match["payload"].split())
    if len(payload) // 4 * 3 > max_bytes + 3:
        raise ImageError(
            "data URL over the cap",
            user_message=image_too_large(max_bytes),
        )
    try:
        data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("invalid base64", user_message="The model sent a broken image.") from None
    return validate_image(data, max_bytes=max_bytes, alt=alt)


def to_data_url(image: Image) -> str:
    """An image as a data URL, the form upstream `image_url` parts take."""
    return f"data:{image.mime};base64,{base64.b64encode(image.data).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class ExtractedImages:
    """What `extract_images` found.

    `caption` is the text with the images taken out; `history_text` is the text with each image replaced by
    a short placeholder (what history stores: never megabytes of base64); `failures` are the images that
    could not be used, each with a user-safe message.
    """

    caption: str
    history_text: str
    images: tuple[Image, ...]
    failures: tuple[ImageError, ...]


def has_inline_image(text: str) -> bool:
    """Cheap check used before the regex: is there any markdown image at all?"""
    return "![" in text


async def extract_images(
    text: str,
    image_urls: Sequence[str] = (),
    *,
    max_bytes: int,
    download: Download | None = None,
) -> ExtractedImages:
    """Find, fetch and validate the images of one assistant message."""
    images: list[Image] = []
    failures: list[ImageError] = []
    caption_parts: list[str] = []
    history_parts: list[str] = []
    position = 0
    for match in _MARKDOWN_IMAGE.finditer(text) if has_inline_image(text) else ():
        caption_parts.append(text[position : match.start()])
        history_parts.append(text[position : match.start()])
        position = match.end()
        alt = match["alt"].strip()
        try:
            images.append(await _load(match["url"], alt=alt, max_bytes=max_bytes, download=download))
            history_parts.append(f"[image: {alt}]" if alt else "[image]")
        except ImageError as exc:
            failures.append(exc)
            history_parts.append("[image that could not be loaded]")
    caption_parts.append(text[position:])
    history_parts.append(text[position:])
    for url in image_urls:
        try:
            images.append(await _load(url, alt="", max_bytes=max_bytes, download=download))
            history_parts.append("\n[image]")
        except ImageError as exc:
            failures.append(exc)
    return ExtractedImages(
        caption=_tidy("".join(caption_parts)),
        history_text=_tidy("".join(history_parts)),
        images=tuple(images),
        failures=tuple(failures),
    )


async def _load(url: str, *, alt: str, max_bytes: int, download: Download | None) -> Image:
    if url.startswith("data:"):
        return decode_data_url(url, max_bytes=max_bytes, alt=alt)
    if download is None:
        raise ImageError("no downloader for an http image", user_message="The model linked an image we cannot fetch.")
    return validate_image(await download(url), max_bytes=max_bytes, alt=alt)


def _tidy(text: str) -> str:
    """Collapse the blank lines left where images stood."""
    return re.sub(r"\n{3,}", "\n\n", text).strip()
