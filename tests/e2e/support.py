"""Helpers every end-to-end test file may need: settings against the fake upstream, a free port, the
environment of a `parley` subprocess, and logging put back after `configure_logging`.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core import Settings
from core.logs import CONTENT_LOGGERS
from tests.fakes.upstream import FakeUpstream

API_KEY = "sk-test-SECRET-key-0123456789abcdef"
PARLEY = str(Path(sys.executable).parent / "parley")  # the console script of this virtualenv
# What a `parley` subprocess keeps of our environment: enough to run, and no stray setting of ours.
KEPT_VARIABLES = ("PATH", "HOME", "LANG")


def make_settings(upstream: FakeUpstream, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for the real assistant against `upstream`, with a SQLite file under `tmp_path`."""
    values: dict[str, Any] = {
        "llm_base_url": upstream.base_url,
        "llm_api_key": API_KEY,
        "chat_model": "fake/echo",
        "image_model": "fake/painter",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
        "llm_max_retries": 0,
        "stream_idle_timeout": 2.0,
    }
    return Settings(_env_file=None, **(values | overrides))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the OS picked it; it is released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def parley_env(**values: str) -> dict[str, str]:
    """The environment of a `parley run` subprocess: our PATH, HOME and LANG, PTB's timedelta opt-in (see
    conftest), then `values` (the settings, by their env names)."""
    kept = {name: value for name, value in os.environ.items() if name in KEPT_VARIABLES}
    return {**kept, "PTB_TIMEDELTA": "true", **values}


@contextmanager
def restored_logging() -> Iterator[None]:
    """configure_logging replaces the root's handlers (pytest's too) and sets the libraries' levels: put
    everything back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in CONTENT_LOGGERS}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, saved in levels.items():
            logging.getLogger(name).setLevel(saved)
