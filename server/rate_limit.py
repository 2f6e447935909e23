"""A bounded in-memory limiter of failed authentication attempts per client address.

Each process keeps its own counts (several workers each allow the limit: a rough bound, enough
to make guessing passwords or tokens over the network hopeless, not an exact quota). A client
that failed ``limit`` times within ``window`` seconds is refused until the window ends. At most
``max_clients`` addresses are tracked; the longest-tracked is forgotten first, so a flood of
addresses cannot grow memory without bound.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict


class FailureLimiter:
    def __init__(self, limit: int, window: float = 60.0, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Seconds until ``client`` may try again (0: it may now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            entry = self._failures.get(client)
            if entry is None:
                return 0
            started, count = entry
            if now - started >= self.window:
                del self._failures[client]
                return 0
            return int(self.window - (now - started)) + 1 if count >= self.limit else 0

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            started, count = self._failures.pop(client, (now, 0))
            if now - started >= self.window:
                started, count = now, 0
            self._failures[client] = (started, count + 1)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def tracked(self) -> int:
        with self._lock:
            return len(self._failures)
