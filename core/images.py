"""Generated images inside an assistant message: find, fetch, validate. Imports no HTTP library.

Three forms are recognised: markdown images with `data:` URLs, markdown images with http(s) URLs
(fetched through the `download` callable the caller passes), and OpenRouter-style
`message.images[].image_url.url`. Every image is checked by its magic bytes and against a byte cap.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from core.errors import IMAGE_NOT_SHOWN, ImageError
from core.events import Image
from core.texts import image_too_large

Download = Callable[[str], Awaitable[bytes]]
"""Fetches an http(s) URL within the answer's byte budget; raises ImageError."""

_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^;,]*)*),(?P<payload>.*)", re.DOTALL)

MAX_IMAGES_PER_ANSWER = 64  # markdown images taken out of one answer; later ones stay in the text
MAX_DOWNLOADS_PER_ANSWER = 4  # linked images fetched per answer; more are refused unfetched
ANSWER_DOWNLOAD_BUDGET_IMAGES = 2  # one answer's downloads read at most this many IMAGE_MAX_BYTES in total


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
    deadline_seconds: float | None = None,
) -> ExtractedImages:
    """Find, fetch and validate the images of one assistant message.

    At most MAX_DOWNLOADS_PER_ANSWER http(s) images are fetched, all at once, within one deadline; the
    byte budget is the `download` callable's (one per answer). Every failure carries the same neutral
    user message (IMAGE_NOT_SHOWN) whatever its cause; the cause stays in the exception's text.
    """
    found = find_markdown_images(text) if has_inline_image(text) else []
    urls = [image.url for image in found] + list(image_urls)
    alts = [image.alt for image in found] + [""] * len(image_urls)
    loaded = await _load_all(urls, alts, max_bytes=max_bytes, download=download, deadline_seconds=deadline_seconds)
    caption_parts: list[str] = []
    history_parts: list[str] = []
    position = 0
    for image, result in zip(found, loaded, strict=False):
        caption_parts.append(text[position : image.start])
        history_parts.append(text[position : image.start])
        position = image.end
        if isinstance(result, Image):
            history_parts.append(f"[image: {image.alt}]" if image.alt else "[image]")
        else:
            history_parts.append("[image that could not be loaded]")
    caption_parts.append(text[position:])
    history_parts.append(text[position:])
    history_parts.extend("\n[image]" for result in loaded[len(found) :] if isinstance(result, Image))
    return ExtractedImages(
        caption=_tidy("".join(caption_parts)),
        history_text=_tidy("".join(history_parts)),
        images=tuple(result for result in loaded if isinstance(result, Image)),
        failures=tuple(result for result in loaded if isinstance(result, ImageError)),
    )


async def _load_all(
    urls: Sequence[str],
    alts: Sequence[str],
    *,
    max_bytes: int,
    download: Download | None,
    deadline_seconds: float | None,
) -> list[Image | ImageError]:
    """Each URL's image or failure, in order: data URLs decoded, the first few http(s) URLs fetched together."""
    results: list[Image | ImageError] = []
    fetches: dict[int, asyncio.Task[bytes]] = {}
    for index, (url, alt) in enumerate(zip(urls, alts, strict=True)):
        if url.startswith("data:"):
            results.append(_neutral(partial(decode_data_url, url, max_bytes=max_bytes, alt=alt)))
        elif download is None or len(fetches) >= MAX_DOWNLOADS_PER_ANSWER:
            results.append(_not_shown("image not fetched (no downloader, or over the per-answer count)"))
        else:
            fetches[index] = asyncio.ensure_future(download(url))
            results.append(_not_shown("placeholder"))
    if fetches:
        try:
            done, _ = await asyncio.wait(fetches.values(), timeout=deadline_seconds)
        finally:  # also when the reply itself is cancelled: no download outlives it
            for task in fetches.values():
                task.cancel()
            await asyncio.gather(*fetches.values(), return_exceptions=True)
        for index, task in fetches.items():
            results[index] = _fetched(task, done, max_bytes=max_bytes, alt=alts[index])
    return results


def _fetched(
    task: asyncio.Task[bytes], done: set[asyncio.Task[bytes]], *, max_bytes: int, alt: str
) -> Image | ImageError:
    if task not in done:
        return _not_shown("image downloads over the per-answer deadline")
    error = task.exception()
    if error is not None:
        if isinstance(error, ImageError):
            return _not_shown(str(error))
        raise error
    return _neutral(partial(validate_image, task.result(), max_bytes=max_bytes, alt=alt))


def _neutral(load: Callable[[], Image]) -> Image | ImageError:
    try:
        return load()
    except ImageError as exc:
        return _not_shown(str(exc))


def _not_shown(reason: str) -> ImageError:
    return ImageError(reason, user_message=IMAGE_NOT_SHOWN)


# --- markdown images, found in one linear pass --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarkdownImage:
    """`![alt](url "title")` at text[start:end]; the URL is a data URL or an http(s) one."""

    start: int
    end: int
    alt: str
    url: str


_SPACE = re.compile(r"\s*")
_BASE64_RUN = re.compile(r"\s+[A-Za-z0-9+/=]+")  # a line of a base64 payload wrapped over lines
_URL_STOP = re.compile(r"[)\s>]")
_CLOSING_PAREN = re.compile(r"\)")
_TITLE_END = re.compile('"')
_OPENING = re.compile(r"\]\(\s*<?(?:data:|https?://)")  # where the destination of a usable image opens


class _NextMatch:
    """The next match of a pattern at or after a position, remembered: asked again for a position before
    that match, it answers without searching, so the callers' scans never cross the same text twice."""

    __slots__ = ("_after", "_found", "_pattern", "_text")

    def __init__(self, pattern: re.Pattern[str], text: str) -> None:
        self._pattern, self._text = pattern, text
        self._after, self._found = -1, -1  # searched from `_after`: first match at `_found` (-1: none)

    def __call__(self, position: int) -> int:
        if self._after <= position and (self._found == -1 or position <= self._found) and self._after >= 0:
            return self._found
        match = self._pattern.search(self._text, position)
        self._after, self._found = position, match.start() if match else -1
        return self._found


def find_markdown_images(text: str) -> list[MarkdownImage]:
    """The `![alt](url)` images with a data: or http(s) URL (the first MAX_IMAGES_PER_ANSWER), left to
    right, in time linear in `text`.

    The grammar is the one a regex would state (alt without `]` or newline; the URL optionally in `<>`;
    a base64 payload may be wrapped over lines; an optional "title"), but it is read from the middle out:
    a C-speed search finds each `](` that opens a data: or http(s) URL, and the `![` that goes with it is
    the first one after the previous `]` or newline (every `![` before the same `]` shares it). The URL and
    title ends are looked up once (`_NextMatch`), so a hostile run of `![`, `](` or unclosed URLs costs one
    pass over the text instead of one per candidate.
    """
    found: list[MarkdownImage] = []
    url_stop, title_end = _NextMatch(_URL_STOP, text), _NextMatch(_TITLE_END, text)
    position = 0  # nothing before this belongs to a later image
    floor = -1  # a `]` or newline known to lie before the next candidate's alt
    closing_paren = _NextMatch(_CLOSING_PAREN, text)
    while (opening := _OPENING.search(text, position)) is not None:
        close = opening.start()
        if closing_paren(close) < 0:
            break  # no `)` after this point: no image can end
        floor = max(floor, position - 1)
        floor = max(floor, text.rfind("]", floor + 1, close), text.rfind("\n", floor + 1, close))
        start = text.find("![", floor + 1, close)
        parsed = _destination(text, close + 1, url_stop, title_end) if start >= 0 else None
        if parsed is None:
            floor = close  # a `]`: every `![` before it is settled, the next alt starts after it
            position = close + 1
            continue
        url, end = parsed
        found.append(MarkdownImage(start, end, text[start + 2 : close].strip(), url))
        if len(found) == MAX_IMAGES_PER_ANSWER:
            break  # the rest stay text: each image costs a little, and no chat shows this many
        position = end
    return found


def _destination(text: str, position: int, url_stop: _NextMatch, title_end: _NextMatch) -> tuple[str, int] | None:
    """`(url "title")` starting at `position`: (url, end after `)`), or None. Slices only on success."""
    if not text.startswith("(", position):
        return None
    position = _SPACE.match(text, position + 1).end()  # type: ignore[union-attr]  # \s* always matches
    position += text.startswith("<", position)
    url_start = position
    if text.startswith("data:", position):
        position = _run_end(text, position, url_stop)
        while (line := _BASE64_RUN.match(text, position)) is not None:
            position = line.end()
    elif text.startswith(("http://", "https://"), position):
        position = _run_end(text, position, url_stop)
        if position == text.find("//", url_start) + 2:
            return None  # "http://" with nothing after it
    else:
        return None
    url_end = position
    position += text.startswith(">", position)
    after_space = _SPACE.match(text, position).end()  # type: ignore[union-attr]
    if after_space > position and text.startswith('"', after_space):
        closing = title_end(after_space + 1)
        if closing < 0:
            return None
        position = _SPACE.match(text, closing + 1).end()  # type: ignore[union-attr]
    else:
        position = after_space
    if not text.startswith(")", position):
        return None
    return text[url_start:url_end], position + 1


def _run_end(text: str, position: int, url_stop: _NextMatch) -> int:
    stop = url_stop(position)
    return len(text) if stop < 0 else stop


def _tidy(text: str) -> str:
    """Collapse the blank lines left where images stood."""
    return re.sub(r"\n{3,}", "\n\n", text).strip()
