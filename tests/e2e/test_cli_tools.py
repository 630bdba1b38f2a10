"""`parley chat` with the chat model calling `generate_image`: a real subprocess against the fake gateway.

Every case of tests/e2e/tool_cases.py but the group one (`parley chat` has no groups; its one-round case is
the drawing shown with the reply)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import API_KEY
from tests.e2e.test_cli import chat_env, run
from tests.e2e.tool_cases import CASES, IMAGE_SECRET, PICTURE, STATUS, ToolCase, case_id
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("case", [case for case in CASES if not case.in_group], ids=case_id)
async def test_each_tool_case_in_parley_chat(tmp_path: Path, case: ToolCase) -> None:
    async with FakeUpstream(api_key=API_KEY) as upstream:
        drawings = case.drawings(upstream)
        drawings.release.set()  # the status line goes to stderr at once: nothing to wait for
        env = chat_env(upstream, IMAGE_MODEL="fake/painter", IMAGE_DIR="pics", **case.env())
        code, out, err = await run(["chat"], env, tmp_path, "".join(f"{asked}\n" for asked, _ in case.turns))
        case.check_requests(upstream)

    assert code == 0, err
    lines = out.splitlines()
    saved = [Path(line.removeprefix("[image saved: ").removesuffix("]")) for line in lines if "[image saved: " in line]
    assert [path.read_bytes() for path in saved] == [PICTURE] * case.images
    assert [line for line in lines if not line.startswith("[image saved: ")] == "\n".join(
        answer for _, answer in case.turns
    ).splitlines()
    assert (STATUS.removesuffix("…") in err) == case.status  # "(🔧 generate_image…)", once per round that ran tools
    assert (f"parley: {case.note}" in err.splitlines()) == bool(case.note)
    assert not any(secret in out + err for secret in (API_KEY, IMAGE_SECRET, "Traceback"))
