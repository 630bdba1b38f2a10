"""Images inside assistant messages: data URLs, http URLs through a downloader, magic bytes, caps."""

from __future__ import annotations

import base64
import random
import re
import time

import pytest

from core.errors import ImageError
from core.images import (
    MAX_IMAGES_PER_ANSWER,
    decode_data_url,
    extract_images,
    find_markdown_images,
    sniff_mime,
    to_data_url,
    validate_image,
)
from tests.fakes.images import gif_bytes, jpeg_bytes, png_bytes, webp_bytes


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (png_bytes(), "image/png"),
        (jpeg_bytes(), "image/jpeg"),
        (webp_bytes(), "image/webp"),
        (gif_bytes(), "image/gif"),
    ],
)
def test_magic_bytes_decide_the_type(data: bytes, mime: str) -> None:
    assert sniff_mime(data) == mime
    # A wrong claim in the URL does not matter: the bytes do.
    assert decode_data_url(data_url(data, "image/png"), max_bytes=10**6).mime == mime


def test_text_is_not_an_image() -> None:
    with pytest.raises(ImageError) as caught:
        decode_data_url(data_url(b"<html>hello</html>"), max_bytes=10**6)
    assert caught.value.user_message == "The model sent something that is not an image."


def test_invalid_base64_is_a_clear_error() -> None:
    with pytest.raises(ImageError) as caught:
        decode_data_url("data:image/png;base64,iVBOR!!!not-base64", max_bytes=10**6)
    assert "broken image" in caught.value.user_message


def test_size_cap_applies_before_decoding() -> None:
    big = png_bytes() + b"\0" * 5000
    with pytest.raises(ImageError) as caught:
        decode_data_url(data_url(big), max_bytes=1000)
    assert "too large" in caught.value.user_message
    with pytest.raises(ImageError):
        validate_image(big, max_bytes=1000)


def test_round_trip_through_data_url() -> None:
    image = validate_image(png_bytes(), max_bytes=10**6, alt="a dot")
    assert decode_data_url(to_data_url(image), max_bytes=10**6).data == image.data
    assert "bytes=" in repr(image) and "base64" not in repr(image)


async def test_markdown_data_url_becomes_image_and_caption() -> None:
    png = png_bytes()
    text = f"Here you go:\n\n![generated image]({data_url(png)})\n\nA red dot."
    found = await extract_images(text, max_bytes=10**6)
    assert [i.data for i in found.images] == [png]
    assert found.images[0].alt == "generated image"
    assert found.caption == "Here you go:\n\nA red dot."
    assert found.history_text == "Here you go:\n\n[image: generated image]\n\nA red dot."
    assert "base64" not in found.history_text and not found.failures


async def test_base64_wrapped_over_lines_and_angle_brackets() -> None:
    encoded = base64.b64encode(jpeg_bytes()).decode()
    wrapped = "\n".join(encoded[i : i + 20] for i in range(0, len(encoded), 20))
    found = await extract_images(f"![x](<data:image/jpeg;base64,{wrapped}>)", max_bytes=10**6)
    assert found.images[0].mime == "image/jpeg" and found.caption == ""


async def test_http_image_goes_through_the_downloader_and_openrouter_images_too() -> None:
    fetched: list[str] = []

    async def download(url: str) -> bytes:
        fetched.append(url)
        return webp_bytes()

    found = await extract_images(
        'Look ![cat](https://img.example/cat.webp "title") done',
        [data_url(gif_bytes(), "image/gif")],
        max_bytes=10**6,
        download=download,
    )
    assert fetched == ["https://img.example/cat.webp"]
    assert [i.mime for i in found.images] == ["image/webp", "image/gif"]
    assert found.caption == "Look  done"


async def test_broken_image_is_reported_and_others_kept() -> None:
    text = f"![a]({data_url(b'nope')}) and ![b]({data_url(png_bytes())})"
    found = await extract_images(text, max_bytes=10**6)
    assert len(found.images) == 1 and len(found.failures) == 1
    assert "[image that could not be loaded]" in found.history_text


async def test_text_without_images_is_untouched() -> None:
    found = await extract_images("just **text** with ![not closed", max_bytes=10**6)
    assert found.images == () and found.caption == "just **text** with ![not closed"


# The regex `find_markdown_images` replaced: the same grammar, but quadratic on a run of "![" (each "![" scans
# to the end). Kept here as the reference the linear reader must agree with.
REFERENCE_IMAGE = re.compile(
    r"!\[(?P<alt>[^\]\n]*)\]\(\s*<?(?P<url>data:[^)\s>]*(?:\s+[A-Za-z0-9+/=]+)*|https?://[^)\s>]+)>?"
    r"(?:\s+\"[^\"]*\")?\s*\)"
)
PIECES = ["![", "!", "[", "]", "(", ")", "](", "a", " ", "\n", "<", ">", '"', "data:", "http://", "x", "QUJD", "=="]


def test_the_linear_image_reader_agrees_with_the_reference_regex() -> None:
    generator = random.Random(11)
    for _ in range(20_000):
        text = "".join(generator.choice(PIECES) for _ in range(generator.randint(0, 14)))
        expected = [(m.start(), m.end(), m["alt"].strip(), m["url"]) for m in REFERENCE_IMAGE.finditer(text)]
        expected = expected[:MAX_IMAGES_PER_ANSWER]
        assert [(i.start, i.end, i.alt, i.url) for i in find_markdown_images(text)] == expected, text


HOSTILE_UNITS = ["![", "[![", "![x](", "![x](http://", "![x](http://a ", "![x](http://a)", "](", "![a](data:", "[", "`"]


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
async def test_a_megabyte_of_hostile_markdown_is_read_in_linear_time(unit: str) -> None:
    text = unit * (1_000_000 // len(unit))
    started = time.perf_counter()
    found = await extract_images(text, max_bytes=10**6)
    elapsed = time.perf_counter() - started
    assert found.images == () and len(found.failures) <= MAX_IMAGES_PER_ANSWER
    assert elapsed < 1.0, f"{elapsed:.2f}s: the quadratic regex took seconds for 16k characters, hours for 1M"
