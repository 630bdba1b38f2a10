"""`parley chat` /system: shown, set, used upstream from the next line on, kept across /reset, reset, bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import API_KEY
from tests.e2e.test_cli import chat_env, run
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


async def test_chat_system_sets_shows_keeps_across_reset_and_resets(tmp_path: Path) -> None:
    lines = [
        "/system",
        "/system Be a pirate.",
        "hello",
        "/reset",
        "again",
        "/system " + "x" * 41,
        "/system reset",
        "bye",
    ]
    async with FakeUpstream(api_key=API_KEY) as upstream:
        env = chat_env(upstream, SYSTEM_PROMPT="Default prompt.", MAX_SYSTEM_PROMPT_CHARS="40")
        code, out, err = await run(["chat"], env, tmp_path, "\n".join(lines) + "\n")
        systems = [r.body["messages"][0]["content"] for r in upstream.chat_requests]
    assert code == 0, err
    assert out.splitlines()[:2] == ["System prompt of this conversation (the default):", "Default prompt."]
    assert "System prompt set (12 characters): it applies from the next message, also after /reset." in out
    assert "System prompt back to the default from the next message." in out
    assert err.strip() == "parley: That system prompt is too long (the limit is 40 characters)."
    assert systems == ["Be a pirate.", "Be a pirate.", "Default prompt."]
