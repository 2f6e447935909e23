"""This process's subscribers: one bounded queue each, filled on the event loop.

Committed events arrive from worker threads (:meth:`LocalHub.dispatch_threadsafe`) and are
offered to each subscriber on the loop. A subscriber whose queue is full is not waited for: it
is marked overflowed, its queue is emptied and it ends with an error at its next read, so a slow
subscriber never slows writers or other subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from server.errors import DomainError, ErrorCode
from server.services.events.event import Event

OVERFLOW: ErrorCode = "subscriber_overflow"
TOO_MANY: ErrorCode = "too_many_subscriptions"


class Subscriber:
    """One subscription's queue of events (only those ``accepts`` takes)."""

    def __init__(self, accepts: Callable[[Event], bool], queue_size: int) -> None:
        self.accepts = accepts
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(queue_size + 1)
        self.queue_size = queue_size
        self.overflowed = False

    def offer(self, events: list[Event]) -> None:
        if self.overflowed:
            return
        for event in events:
            if not self.accepts(event):
                continue
            if self.queue.qsize() >= self.queue_size:
                self.overflowed = True
                while not self.queue.empty():
                    self.queue.get_nowait()
                self.queue.put_nowait(None)  # wakes the reader, who raises
                return
            self.queue.put_nowait(event)

    async def next(self) -> Event:
        event = await self.queue.get()
        if event is None:
            raise DomainError(
                OVERFLOW,
                f"This subscriber fell more than {self.queue_size} events behind and was "
                "closed; subscribe again (and read faster)",
                {"limit": "queueSize", "max": self.queue_size},
            )
        return event


class LocalHub:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, queue_size: int, max_subscriptions: int
    ) -> None:
        self.loop = loop
        self.queue_size = queue_size
        self.max_subscriptions = max_subscriptions
        self._subscribers: set[Subscriber] = set()
        self._loop_thread = threading.get_ident()

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
        subscriber = Subscriber(accepts, self.queue_size)
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
