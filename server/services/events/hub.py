"""This process's subscribers: one bounded queue each, filled on the event loop.

Committed events arrive from worker threads (:meth:`LocalHub.dispatch_threadsafe`) and are
offered to each subscriber on the loop. A subscriber whose queue is full is not waited for: it
is marked overflowed, its queue is emptied and it ends with an error at its next read, so a slow
subscriber never slows writers or other subscribers.

Waiting readers are woken :data:`WAKE_BATCH` at a time, one batch per turn of the event loop,
not all at once: each wake-up runs that subscriber's whole delivery (GraphQL result, encoding,
socket write), and asyncio polls sockets only between turns, so waking 200 subscribers in one
turn kept every HTTP request (the writers' too) waiting for the whole fan-out. In batches,
requests are served between them. Events stay in the subscribers' own bounded queues meanwhile;
the hub holds at most one pending wake-up per subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable

from server.errors import DomainError, ErrorCode
from server.services.events.event import Event

OVERFLOW: ErrorCode = "subscriber_overflow"
TOO_MANY: ErrorCode = "too_many_subscriptions"
WAKE_BATCH = 16


class Subscriber:
    """One subscription's queue of events (only those ``accepts`` takes)."""

    def __init__(
        self,
        accepts: Callable[[Event], bool],
        queue_size: int,
        wake: Callable[[Subscriber], None],
    ) -> None:
        self.accepts = accepts
        self.queue: deque[Event] = deque()
        self.queue_size = queue_size
        self.overflowed = False
        self.waiter: asyncio.Future[None] | None = None
        self.wake_queued = False
        self._wake = wake

    def offer(self, events: list[Event]) -> None:
        if self.overflowed:
            return
        taken = False
        for event in events:
            if not self.accepts(event):
                continue
            if len(self.queue) >= self.queue_size:
                self.overflowed = True
                self.queue.clear()
                taken = True  # the reader wakes up to raise
                break
            self.queue.append(event)
            taken = True
        if taken and self.waiter is not None and not self.waiter.done():
            self._wake(self)

    async def next(self) -> Event:
        while not self.queue and not self.overflowed:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.overflowed:
            raise DomainError(
                OVERFLOW,
                f"This subscriber fell more than {self.queue_size} events behind and was "
                "closed; subscribe again (and read faster)",
                {"limit": "queueSize", "max": self.queue_size},
            )
        return self.queue.popleft()


class LocalHub:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, queue_size: int, max_subscriptions: int
    ) -> None:
        self.loop = loop
        self.queue_size = queue_size
        self.max_subscriptions = max_subscriptions
        self._subscribers: set[Subscriber] = set()
        self._loop_thread = threading.get_ident()
        self._to_wake: deque[Subscriber] = deque()
        self._waking = False

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self, accepts: Callable[[Event], bool]) -> Subscriber:
        """A new subscriber (on the loop); TOO_MANY when the process has its maximum."""
        if len(self._subscribers) >= self.max_subscriptions:
            raise DomainError(
                TOO_MANY,
                f"This server has its maximum of {self.max_subscriptions} subscriptions; "
                "try again later",
                {"limit": "subscriptions", "max": self.max_subscriptions},
            )
        subscriber = Subscriber(accepts, self.queue_size, self._wake)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def dispatch_threadsafe(self, events: list[Event]) -> None:
        if threading.get_ident() == self._loop_thread:
            self._dispatch(events)
            return
        # RuntimeError: the loop closed (shutdown): nobody is left to tell.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._dispatch, events)

    def _dispatch(self, events: list[Event]) -> None:
        for subscriber in list(self._subscribers):
            subscriber.offer(events)

    def _wake(self, subscriber: Subscriber) -> None:
        """Queue a waiting reader's wake-up (once until its batch comes)."""
        if subscriber.wake_queued:
            return
        subscriber.wake_queued = True
        self._to_wake.append(subscriber)
        if not self._waking:
            self._waking = True
            self.loop.call_soon(self._wake_batch)

    def _wake_batch(self) -> None:
        """Wake the next :data:`WAKE_BATCH` readers; the rest at the next turn of the loop."""
        for _ in range(min(WAKE_BATCH, len(self._to_wake))):
            subscriber = self._to_wake.popleft()
            subscriber.wake_queued = False
            waiter = subscriber.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if self._to_wake:
            self.loop.call_soon(self._wake_batch)
        else:
            self._waking = False
