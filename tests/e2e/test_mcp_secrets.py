"""The header and env values of MCP_CONFIG are secrets: no log line carries them while Parley runs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from core import open_assistant
from tests.e2e.support import free_port, make_settings
from tests.fakes.upstream import FakeUpstream

HEADER_TOKEN = "mcp-header-token-4f9c2a"
ENV_SECRET = "orders-db-password-77aa31"


async def test_mcp_header_and_env_values_are_redacted_from_every_log_line(
    upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    # Nothing listens there: the server fails, is logged and retried; the config still counts.
                    "search": {
                        "url": f"http://127.0.0.1:{free_port()}/mcp",
                        "headers": {"Authorization": f"Bearer {HEADER_TOKEN}"},
                    },
                    "orders": {"command": "false", "env": {"ORDERS_DB_PASSWORD": ENV_SECRET}},
                }
            }
        )
    )
    settings = make_settings(upstream, tmp_path, mcp_config=str(config))
    library = logging.getLogger("some.library")  # any logger: a library quoting a request or an environment
    with caplog.at_level(logging.INFO):
        async with open_assistant(settings):
            library.warning("request headers={'Authorization': 'Bearer %s'}", HEADER_TOKEN)
            library.warning("token alone: %s; env: ORDERS_DB_PASSWORD=%s", HEADER_TOKEN, ENV_SECRET)
        library.warning("after shutdown: %s", "nothing registered is left")
    text = "\n".join(caplog.messages)
    assert HEADER_TOKEN not in text
    assert ENV_SECRET not in text
    assert text.count("<redacted>") >= 3
    assert "after shutdown" in text
