"""Which upstream errors count as "this model or gateway does not take `tools`" (core/upstream/faults.py).

Only those are asked again without tools and remembered; any other 400 must surface as the usual error.
"""

from __future__ import annotations

import json

import pytest

from core.errors import ToolsRefusedError, UpstreamRejectedError
from core.upstream.chunks import parse_error_body
from core.upstream.faults import TOO_LONG_MESSAGE, Secret, error_for

REFUSALS = [
    # OpenAI (o1-preview era): the refused field is in `param`.
    (400, {"error": {"message": "Unsupported parameter: 'tools' is not supported with this model.",
                     "type": "invalid_request_error", "param": "tools", "code": "unsupported_parameter"}}),
    # OpenAI, a `tool_choice` for a model without tools.
    (400, {"error": {"message": "Invalid value for 'tool_choice'.", "type": "invalid_request_error",
                     "param": "tool_choice", "code": None}}),
    # Ollama's OpenAI-compatible API.
    (400, {"error": {"message": "registry.ollama.ai/library/gemma:2b does not support tools",
                     "type": "api_error", "param": None, "code": None}}),
    # vLLM started without a tool parser.
    (400, {"object": "error", "message": '"auto" tool choice requires --enable-auto-tool-choice and '
                                         "--tool-call-parser to be set", "type": "BadRequestError", "code": 400}),
    # OpenRouter: no provider of the model takes tools (a 404).
    (404, {"error": {"message": "No endpoints found that support tool use. To learn more about provider "
                                "routing, visit: https://openrouter.ai/docs/provider-routing", "code": 404}}),
    # A gateway's own words.
    (400, {"error": {"message": "Tool calling is not supported for this model", "type": "invalid_request_error"}}),
    (400, {"error": "tools is not supported"}),
]  # fmt: skip

NOT_REFUSALS = [
    # A broken history: about a tool message, but not a refusal of tools.
    (400, {"error": {"message": "Invalid parameter: messages with role 'tool' must be a response to a preceding "
                                "message with 'tool_calls'.", "type": "invalid_request_error",
                     "param": "messages.[3].role", "code": None}}),
    (400, {"error": {"message": "bad request: tool message too large", "type": "invalid_request_error"}}),
    # One tool's schema is wrong: the gateway takes tools, ours was bad.
    (400, {"error": {"message": "Invalid schema for function 'lookup': 'object' is not valid",
                     "type": "invalid_request_error", "param": "tools[0].function.parameters"}}),
    (400, {"error": {"message": "Unsupported value: 'tools[2].function.parameters' uses a keyword that is not "
                                "supported", "param": "tools[2].function.parameters"}}),
    (400, {"error": {"message": "temperature is not supported with this model", "param": "temperature"}}),
    # A tools refusal in words, but a server error: not a refusal (and retried as an outage).
    (500, {"error": {"message": "tools are not supported"}}),
]  # fmt: skip


def _error(status: int, body: object) -> Exception:
    return error_for(status, parse_error_body(json.dumps(body).encode()), Secret("sk-key"))


@pytest.mark.parametrize(("status", "body"), REFUSALS)
def test_an_error_naming_the_tools_as_unsupported_is_a_tools_refusal(status: int, body: object) -> None:
    error = _error(status, body)
    assert type(error) is ToolsRefusedError and error.status == status
    assert error.user_message == UpstreamRejectedError.default_message  # never the gateway's words


@pytest.mark.parametrize(("status", "body"), NOT_REFUSALS)
def test_other_errors_mentioning_a_tool_are_not_a_tools_refusal(status: int, body: object) -> None:
    assert not isinstance(_error(status, body), ToolsRefusedError)


def test_a_context_overflow_mentioning_a_tool_message_tells_the_user_to_reset() -> None:
    body = {"error": {"message": "This model's maximum context length is 8192 tokens; the tool message is too long, "
                                 "tools are not supported beyond it", "code": "context_length_exceeded"}}  # fmt: skip
    error = _error(400, body)
    assert type(error) is UpstreamRejectedError and error.user_message == TOO_LONG_MESSAGE
