"""`POST /v1/audio/transcriptions` of the fake gateway: the multipart form read by hand and checked as
OpenAI documents it; a malformed form gets a 400 in OpenAI's error shape.

OpenAI, createTranscription (platform.openai.com/docs/api-reference/audio/createTranscription), "Request body
(multipart/form-data)": `file` (required) "The audio file object (not file name) to transcribe, in one of these
formats: flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, or webm"; `model` (required); `response_format` "json,
text, srt, verbose_json, or vtt" (default json), whose json answer is `{"text": ...}`. The speech-to-text guide
(platform.openai.com/docs/guides/speech-to-text): "File uploads are currently limited to 25 MB". The form
itself follows RFC 7578: parts separated by `--boundary`, each with a `Content-Disposition: form-data;
name="..."` header (and `filename="..."` for a file), the last boundary followed by `--`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FORMATS = frozenset({"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"})
RESPONSE_FORMATS = frozenset({"json", "text", "srt", "verbose_json", "vtt"})
UPLOAD_MAX_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    """A form the fake accepted: the `file` part as sent, and the text fields."""

    model: str
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    fields: Mapping[str, str]


class FormError(ValueError):
    """What OpenAI would answer 400 for; the message names the problem."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param

    def body(self) -> dict[str, object]:
        return {"error": {"message": str(self), "type": "invalid_request_error", "param": self.param, "code": None}}


def read_transcription(content_type: str, raw: bytes) -> TranscriptionRequest:
    """The request's form, checked; FormError when OpenAI would refuse it."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise FormError("Expected multipart/form-data")
    boundary = _param(params, "boundary")
    if not boundary:
        raise FormError("multipart/form-data without a boundary")
    parts = _parts(raw, boundary.encode("latin-1"))
    by_name = {part.name: part for part in parts}
    file, model = by_name.get("file"), by_name.get("model")
    if file is None or file.filename is None:
        raise FormError("you must provide a file", "file")
    if model is None or not model.data.strip():
        raise FormError("you must provide a model parameter", "model")
    extension = file.filename.rpartition(".")[2].lower() if "." in file.filename else ""
    if extension not in FORMATS:
        raise FormError(f"Invalid file format. Supported formats: {sorted(FORMATS)}", "file")
    if len(file.data) > UPLOAD_MAX_BYTES:
        raise FormError("Maximum content size limit (26214400) exceeded", "file")
    fields = {p.name: p.data.decode() for p in parts if p.filename is None}
    if fields.get("response_format", "json") not in RESPONSE_FORMATS:
        raise FormError("Invalid response_format", "response_format")
    return TranscriptionRequest(fields["model"], file.filename, file.content_type or "", file.data, fields)


def _parts(raw: bytes, boundary: bytes) -> list[Part]:
    delimiter = b"--" + boundary
    pieces = raw.split(delimiter)
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise FormError("malformed multipart body: no closing boundary")
    parts = []
    for piece in pieces[1:-1]:
        if not piece.startswith(b"\r\n") or not piece.endswith(b"\r\n"):
            raise FormError("malformed multipart body: a part without CRLF around it")
        head, separator, body = piece[2:-2].partition(b"\r\n\r\n")
        if not separator:
            raise FormError("malformed multipart body: a part without headers")
        headers = _headers(head.decode("utf-8"))
        disposition = headers.get("content-disposition", "")
        kind, _, params = disposition.partition(";")
        name = _param(params, "name")
        if kind.strip().lower() != "form-data" or name is None:
            raise FormError("malformed multipart body: a part without Content-Disposition: form-data; name")
        parts.append(Part(name, _param(params, "filename"), headers.get("content-type"), body))
    return parts


def _headers(head: str) -> dict[str, str]:
    found = {}
    for line in head.split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            raise FormError("malformed multipart body: a bad part header")
        found[name.strip().lower()] = value.strip()
    return found


def _param(params: str, wanted: str) -> str | None:
    """A `name=value` or `name="value"` parameter of a header (no `;` inside quoted values: ours have none)."""
    for item in params.split(";"):
        key, equals, value = item.strip().partition("=")
        if equals and key.strip().lower() == wanted:
            value = value.strip()
            return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return None


@dataclass(frozen=True, slots=True)
class Transcript:
    """A scripted answer: `{"text": text}`, with `usage` when given (gpt-4o-transcribe reports
    `{"type": "tokens", "input_tokens": ..., "output_tokens": ..., "total_tokens": ...}`)."""

    text: str
    usage: Mapping[str, object] | None = None

    def body(self) -> dict[str, object]:
        return {"text": self.text} | ({"usage": dict(self.usage)} if self.usage is not None else {})


def default_transcript(request: TranscriptionRequest) -> Transcript:
    return Transcript(f"Heard {len(request.data)} bytes of {request.filename}.")
