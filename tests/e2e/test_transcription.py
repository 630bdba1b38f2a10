"""UpstreamClient.transcribe against the fake gateway: OpenAI's multipart form as sent, the answer read, errors
mapped as a chat call's are; and the fake's own form rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core.errors import UpstreamRateLimitError, UpstreamRejectedError, UpstreamUnavailableError
from core.events import Usage
from core.upstream import UpstreamClient
from core.upstream.faults import AUDIO_REJECTED_MESSAGE
from tests.e2e.support import API_KEY
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

OGG = b"OggS\x00\x02" + bytes(range(256)) * 8 + b"\r\n--not-a-boundary\r\n"  # binary, CRLFs and dashes included


@pytest.fixture
async def client(upstream: FakeUpstream) -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient(
        base_url=upstream.base_url, api_key=API_KEY, backoff_base_seconds=0.001, backoff_max_seconds=0.01
    ) as made:
        yield made


async def test_transcribe_sends_the_file_as_it_came_in_openais_multipart_form(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_transcript("what is the weather", usage={"type": "tokens", "input_tokens": 30, "output_tokens": 5})
    transcript = await client.transcribe(
        model="whisper-1", audio=OGG, filename="voice.ogg", content_type="audio/ogg", user="u1"
    )
    assert transcript.text == "what is the weather"
    assert transcript.usage == Usage(prompt_tokens=30, completion_tokens=5, total_tokens=35)
    [form] = upstream.transcriptions
    assert (form.model, form.filename, form.content_type, form.data) == ("whisper-1", "voice.ogg", "audio/ogg", OGG)
    assert form.fields["response_format"] == "json"
    [request] = [r for r in upstream.requests if r.path == "/v1/audio/transcriptions"]
    assert request.authorization == f"Bearer {API_KEY}"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")


async def test_a_duration_usage_is_not_counted_as_tokens(upstream: FakeUpstream, client: UpstreamClient) -> None:
    upstream.add_transcript("hi", usage={"type": "duration", "seconds": 3})  # whisper-1's usage
    transcript = await client.transcribe(model="whisper-1", audio=OGG, filename="v.ogg", content_type="audio/ogg")
    assert (transcript.text, transcript.usage) == ("hi", None)


async def test_transcription_errors_are_the_upstream_errors_of_a_chat_call(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_error(503, endpoint="transcribe")  # retried, then answered
    assert (await client.transcribe(model="m", audio=OGG, filename="v.ogg", content_type="audio/ogg")).text
    upstream.add_error(500, endpoint="transcribe")
    with pytest.raises(UpstreamUnavailableError):
        await client.transcribe(model="m", audio=OGG, filename="v.ogg", content_type="audio/ogg")
    for _ in range(4):
        upstream.add_error(429, endpoint="transcribe")
    with pytest.raises(UpstreamRateLimitError):
        await client.transcribe(model="m", audio=OGG, filename="v.ogg", content_type="audio/ogg")
    with pytest.raises(UpstreamRejectedError) as rejected:  # the fake refuses the extension, as OpenAI does
        await client.transcribe(model="m", audio=OGG, filename="voice.opus", content_type="audio/ogg")
    assert rejected.value.status == 400
    assert rejected.value.user_message == AUDIO_REJECTED_MESSAGE
    assert "Invalid file format" in str(rejected.value)


async def test_the_fake_refuses_a_malformed_form_with_400(upstream: FakeUpstream) -> None:
    url = f"{upstream.base_url}/audio/transcriptions"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(headers=headers) as http:
        no_file = await http.post(url, data={"model": "whisper-1"}, files={"other": ("x.ogg", OGG, "audio/ogg")})
        no_model = await http.post(url, files={"file": ("x.ogg", OGG, "audio/ogg")})
        as_json = await http.post(url, json={"model": "whisper-1", "file": "x.ogg"})
        cut = await http.post(
            url,
            content=b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n',
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
    assert [r.status_code for r in (no_file, no_model, as_json, cut)] == [400, 400, 400, 400]
    assert no_file.json()["error"]["param"] == "file"
    assert no_model.json()["error"]["param"] == "model"
    assert upstream.transcriptions == []
