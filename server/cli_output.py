"""Terminal output shared by the ``labelgraph`` commands: a progress line that log records
never run into."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Protocol


class ProgressLine(Protocol):
    def break_line(self) -> None:
        """End the line the progress bar is drawn on, if it is unfinished."""


class _BreakLineFirst(logging.Filter):
    def __init__(self, line: ProgressLine) -> None:
        super().__init__()
        self.line = line

    def filter(self, record: logging.LogRecord) -> bool:
        self.line.break_line()
        return True


@contextlib.contextmanager
def logs_below(line: ProgressLine) -> Iterator[None]:
    """While inside, a log record written by the root logger's handlers starts on a line of
    its own: the progress bar's unfinished line is ended first (and redrawn below later)."""
    breaker = _BreakLineFirst(line)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(breaker)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(breaker)
