"""Pause the cyclic garbage collector around bulk work.

Building hundreds of thousands of small dicts triggers many generation-0 collections that
find nothing (JSON trees hold no cycles); pausing the collector makes imports ~2x faster.
Pauses nest and are counted across threads: the collector resumes when the last one ends.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    global _depth
    with _lock:
        if _depth == 0 and gc.isenabled():
            gc.disable()
            _depth = 1
        elif _depth:
            _depth += 1
        else:  # collector disabled by someone else: leave it alone
            yield
            return
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.enable()
