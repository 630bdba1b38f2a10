"""Wait for a log line of the code under test: the event that says a step is done when nothing outside shows it
(an answer and its usage are stored just after the final text is on screen).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager


class _LineSeen(logging.Handler):
    def __init__(self, text: str) -> None:
        super().__init__(logging.INFO)
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@contextmanager
def log_line(logger_name: str, text: str) -> Iterator[asyncio.Event]:
    """An event set when `logger_name` logs a line (INFO or above) containing `text`."""
    logger = logging.getLogger(logger_name)
    handler, level = _LineSeen(text), logger.level
    logger.addHandler(handler)
    logger.setLevel(min(level or logging.INFO, logging.INFO))
    try:
        yield handler.seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


REPLY_STORED = ("core.assistant", "reply done")  # Assistant logs it once the answer and its usage are stored
