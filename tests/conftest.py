"""Suite-wide: when pytest-timeout stops a hung test, the report shows where every asyncio task waits.

The timeout fails the test from a SIGALRM handler (`timeout_method = "signal"`), so the run goes on with
the next test; but its traceback ends in the event loop's `select()`, which does not say which await hung.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Generator
from typing import Any

import pytest

TIMEOUT_FAILURE = "from pytest-timeout"  # how pytest-timeout's failure message ends


def await_chain(task: asyncio.Task[Any]) -> str:
    """The task's coroutines, outermost first, down to the await it is suspended in."""
    lines = [f"{task!r}"]
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        frame = frame or getattr(awaited, "gi_frame", None)
        if frame is not None:
            lines.append(f'  File "{frame.f_code.co_filename}", line {frame.f_lineno}, in {frame.f_code.co_name}')
        awaited = (
            getattr(awaited, "cr_await", None)
            or getattr(awaited, "ag_await", None)
            or getattr(awaited, "gi_yieldfrom", None)
        )
    return "\n".join(lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and call.excinfo is not None and TIMEOUT_FAILURE in str(call.excinfo.value):
        # The loop has stopped by now; its tasks are still alive, and found through the garbage collector.
        pending = [task for task in gc.get_objects() if isinstance(task, asyncio.Task) and not task.done()]
        chains = "\n\n".join(await_chain(task) for task in pending) or "none"
        report.sections.append(("asyncio tasks pending at the timeout", chains + "\n"))
    return report
