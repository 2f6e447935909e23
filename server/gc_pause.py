"""The cyclic garbage collector: paused around bulk work, and the start-up objects frozen.

Building hundreds of thousands of small dicts triggers many generation-0 collections that
find nothing (JSON trees hold no cycles); pausing the collector makes imports ~2x faster.
Pauses nest and are counted across threads: the collector resumes when the last one ends.

A running server keeps ~100k objects from start-up (modules, the schema and its types, the
stored operations) alive for its whole life, and each full (generation 2) collection walked
them all: a page of 100 tasks allocates enough for one full collection every ~40 pages, and
those cost ~1.3 ms per page on average in-process (more than the page's SQL). While the
server runs, :func:`startup_objects_frozen` keeps them in the permanent generation
(``gc.freeze``), which collections skip; objects made later are collected as before.
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


_frozen_lock = threading.Lock()
_frozen_depth = 0


@contextlib.contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """While the block runs (a server's life, from the end of start-up), the objects alive at
    its start are left out of collections (``gc.freeze``); they are handed back at its end
    (``gc.unfreeze``, when the last of nested blocks ends: several apps in one process), so
    that garbage among them (an app a test dropped) is collected then. Both are O(1)."""
    global _frozen_depth
    with _frozen_lock:
        gc.freeze()  # nested: also the objects made since the outer block began
        _frozen_depth += 1
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen_depth -= 1
            if _frozen_depth == 0:
                gc.unfreeze()
