"""The `parley` command as a user runs it: a real subprocess against the fake gateway."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import API_KEY
from tests.e2e.support import parley_env
from tests.fakes.images import png_bytes
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

PARLEY = str(Path(sys.executable).parent / "parley")


def env_for(**values: str) -> dict[str, str]:
    """A `parley` subprocess's environment: `values` (settings by env name), output unbuffered."""
    return parley_env(PYTHONUNBUFFERED="1", **values)


def chat_env(upstream: FakeUpstream, **values: str) -> dict[str, str]:
    """`parley chat` against `upstream` with a SQLite file in the working folder; `values` add or override."""
    return env_for(
        **{
            "LLM_BASE_URL": upstream.base_url,
            "LLM_API_KEY": API_KEY,
            "CHAT_MODEL": "fake/echo",
            "DATABASE_URL": "sqlite:///parley.db",
            **values,
        }
    )


async def run(args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        PARLEY,
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_chat_reads_lines_prints_replies_and_goes_on_after_an_error(tmp_path: Path) -> None:
    async with FakeUpstream(api_key=API_KEY) as upstream:
        upstream.add_reply("Hi there, friend.", chunk_chars=2, byte_chunking="byte")
        upstream.add_error(401)
        upstream.add_reply(f"Your picture:\n![red](data:image/png;base64,{base64.b64encode(png_bytes()).decode()})")
        env = chat_env(upstream, IMAGE_MODEL="fake/painter", DATABASE_URL="sqlite:///data/parley.db", IMAGE_DIR="pics")
        code, out, err = await run(
            ["chat"], env, tmp_path, "hello\nthis one fails\n\n/imagine a red dot\nand after that?\n/reset\nnew start\n"
        )
        requests = upstream.chat_requests
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Hi there, friend."
    saved = [line for line in lines if line.startswith("[image saved: ")]
    assert len(saved) == 1
    path = Path(saved[0].removeprefix("[image saved: ").removesuffix("]"))
    assert path.parent == (tmp_path / "pics").resolve() and path.read_bytes() == png_bytes()
    assert "Your picture:" in lines
    assert "Echo: and after that?" in lines and lines[-2:] == [
        "New conversation started: earlier messages are no longer sent to the model.",
        "Echo: new start",
    ]
    assert err.strip().splitlines() == [
        "parley: The model service refused our credentials. The bot's operator needs to check the API key."
    ]
    assert "Traceback" not in err and API_KEY not in out + err
    # "and after that?" saw the first exchange and the failed question; "new start" saw nothing before it.
    assert [m["content"] for m in requests[3].body["messages"][1:]] == [
        "hello",
        "Hi there, friend.",
        "this one fails",
        "and after that?",
    ]
    assert len(requests[4].body["messages"]) == 2
    assert (tmp_path / "data" / "parley.db").exists()


async def test_missing_setting_is_one_line_without_traceback(tmp_path: Path) -> None:
    code, out, err = await run(["chat"], env_for(LLM_API_KEY="k", CHAT_MODEL="m"), tmp_path)
    assert code == 2 and out == ""
    assert err == "parley: error: LLM_BASE_URL is not set\n"
    code, _, err = await run(
        ["run"], env_for(LLM_BASE_URL="http://127.0.0.1:9/v1", LLM_API_KEY="k", CHAT_MODEL="m"), tmp_path
    )
    assert code == 2 and err.count("\n") == 1 and "TELEGRAM_BOT_TOKEN" in err


async def test_dotenv_is_read_and_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite:///fresh.db\n")
    code, out, err = await run(["db", "upgrade"], env_for(), tmp_path)
    assert code == 0, err
    assert out.strip() == "database is up to date"
    with sqlite3.connect(tmp_path / "fresh.db") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    assert {"users", "conversations", "messages", "usage_records", "alembic_version"} <= tables


async def test_chat_notes_answers_the_upstream_cut_and_the_reply_deadline_then_goes_on(tmp_path: Path) -> None:
    async with FakeUpstream(api_key=API_KEY) as upstream:
        upstream.add_reply("A long answer that stops mid", finish_reason="length")
        upstream.add_reply("I can tell you that", finish_reason="content_filter")
        upstream.add_fault("keepalive_after", 19)  # then only keep-alive comments, until we leave
        env = chat_env(upstream, REPLY_TIMEOUT_SECONDS="1.5", STREAM_IDLE_TIMEOUT="1")
        code, out, err = await run(["chat"], env, tmp_path, "one\ntwo\nthree\nfour\n")
    assert code == 0, err
    assert out.splitlines() == [
        "A long answer that stops mid",
        "I can tell you that",
        "The quick brown fox",
        "Echo: four",
    ]
    assert err.splitlines() == [
        "parley: The answer hit the length limit.",
        "parley: The provider filtered this answer.",
        "parley: The answer took too long and was stopped.",
    ]
