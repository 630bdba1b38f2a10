"""The suite's per-test timeout: a hung test fails alone, shows the await it hung in, and the run goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HUNG = """
import asyncio


async def wait_forever() -> None:
    await asyncio.Event().wait()


async def test_hangs() -> None:
    await asyncio.create_task(wait_forever())


def test_runs_after_the_hang() -> None:
    pass
"""


def test_a_hung_async_test_fails_alone_with_the_await_it_hung_in(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "timeout = 1\ntimeout_method = signal\n"
    )
    pytester.makeconftest((Path(__file__).parents[1] / "conftest.py").read_text())  # the suite's own
    pytester.makepyfile(test_hung=HUNG)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*asyncio tasks pending at the timeout*", "*in wait_forever"])
