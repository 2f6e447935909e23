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

Subscribers that can take frames directly (:class:`DirectSubscriber`: a WebSocket connection
served by ``server/live_transport.py``) skip all that: one fan-out task per hub takes each event
in commit order, renders it once per distinct ``key`` (the same document, variables and role
get the same bytes) and writes those bytes to every such subscriber's connection, yielding to
the event loop every :data:`FANOUT_BATCH` writes so that HTTP requests are served in between.
A subscriber made by a signed-in user (``user_id``) ends with ``UNAUTHENTICATED`` when a
``users.disabled`` event names that user, in whichever process it is; one made with the user's
login cookie (``by_cookie``) also ends when a ``users.signed_out`` event names them (signing out
ends every login cookie of the user, and so what was opened with one).

Their bound is ``queue_size`` events counted from the fan-out's backlog to the connection's own
buffer: a subscriber with more than ``queue_size`` events not yet taken by the fan-out (renders
slower than commits) or frames still held by the transport (the kernel took none of them) has
fallen behind and is ended, so the backlog never outgrows ``queue_size`` events per subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

from server.errors import DomainError, ErrorCode
from server.services.events.event import USERS_DISABLED, USERS_SIGNED_OUT, Event

OVERFLOW: ErrorCode = "subscriber_overflow"
TOO_MANY: ErrorCode = "too_many_subscriptions"
WAKE_BATCH = 16
FANOUT_BATCH = 32
log = logging.getLogger(__name__)


def disabled_error() -> DomainError:
    return DomainError("unauthenticated", "This user was disabled; the subscription ended")


def signed_out_error() -> DomainError:
    return DomainError(
        "unauthenticated", "This user signed out; the subscription made with their login ended"
    )


def overflow_error(queue_size: int) -> DomainError:
    return DomainError(
        OVERFLOW,
        f"This subscriber fell more than {queue_size} events behind and was "
        "closed; subscribe again (and read faster)",
        {"limit": "queueSize", "max": queue_size},
    )


class Subscriber:
    """One subscription's queue of events (only those ``accepts`` takes)."""

    def __init__(
        self,
        accepts: Callable[[Event], bool],
        queue_size: int,
        wake: Callable[[Subscriber], None],
        user_id: int | None = None,
        by_cookie: bool = False,
    ) -> None:
        self.accepts = accepts
        self.user_id = user_id
        self.by_cookie = by_cookie
        self.queue: deque[Event] = deque()
        self.queue_size = queue_size
        self.overflowed = False
        self.error: DomainError | None = None  # ends the subscription at the next read
        self.waiter: asyncio.Future[None] | None = None
        self.wake_queued = False
        self._wake = wake

    def offer(self, events: list[Event]) -> None:
        if self.overflowed or self.error is not None:
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

    def fail(self, error: DomainError) -> None:
        """End the subscription with ``error`` at its next read (queued events are dropped)."""
        self.error = error
        self.queue.clear()
        if self.waiter is not None and not self.waiter.done():
            self._wake(self)

    async def next(self) -> Event:
        if self.error is not None:
            raise self.error
        while not self.queue and not self.overflowed and self.error is None:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.error is not None:
            raise self.error
        if self.overflowed:
            raise overflow_error(self.queue_size)
        return self.queue.popleft()


class DirectSubscriber:
    """One subscription whose frames the hub's fan-out writes itself.

    ``render(event)`` gives the bytes of the event's result, the same for every subscriber of
    the same ``key`` (rendered once per event and key); each subscriber's frame is ``prefix``
    (its envelope, with its operation id), those bytes and ``}``. ``write(frames)`` sends them
    in order and answers how many bytes its connection still holds (None once it is closing).
    :attr:`ended` is done when the subscription is over: with None when the connection closed,
    with the overflow error when the subscriber fell behind.
    """

    def __init__(
        self,
        accepts: Callable[[Event], bool],
        key: Hashable,
        render: Callable[[Event], Awaitable[bytes]],
        prefix: bytes,
        write: Callable[[list[bytes]], int | None],
        queue_size: int,
        user_id: int | None = None,
        by_cookie: bool = False,
    ) -> None:
        self.accepts = accepts
        self.user_id = user_id
        self.by_cookie = by_cookie
        self.key = key
        self.render = render
        self.prefix = prefix
        self.write = write
        self.queue_size = queue_size
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._written = 0
        self._frame_ends: deque[int] = deque()  # where each frame the transport holds ends
        self.waiting = 0  # events in the hub's backlog for this subscriber, not yet rendered

    def take(self) -> bool:
        """Count one more event for the fan-out to render; False, and the subscription ends
        with an overflow, when that would put it more than ``queue_size`` events behind."""
        if self.ended.done():
            return False
        if self.waiting + len(self._frame_ends) > self.queue_size:
            self.ended.set_exception(overflow_error(self.queue_size))
            return False
        self.waiting += 1
        return True

    def deliver(self, payloads: list[bytes]) -> None:
        if self.ended.done():
            return
        frames = [self.prefix + payload + b"}" for payload in payloads]
        held = self.write(frames)
        if held is None:
            self.ended.set_result(None)
            return
        for frame in frames:  # the frame headers are not counted: a few bytes each
            self._written += len(frame)
            self._frame_ends.append(self._written)
        taken = self._written - held  # bytes the kernel accepted so far (about)
        ends = self._frame_ends
        while ends and ends[0] <= taken:
            ends.popleft()
        if len(ends) > self.queue_size:
            self.ended.set_exception(overflow_error(self.queue_size))

    def fail(self, error: BaseException) -> None:
        if not self.ended.done():
            self.ended.set_exception(error)


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
        self._direct: set[DirectSubscriber] = set()
        self._fanout: deque[tuple[Event, list[DirectSubscriber]]] = deque()
        self._fanout_task: asyncio.Task[None] | None = None

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers) or bool(self._direct)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers) + len(self._direct)

    def _check_room(self) -> None:
        if self.subscriber_count >= self.max_subscriptions:
            raise DomainError(
                TOO_MANY,
                f"This server has its maximum of {self.max_subscriptions} subscriptions; "
                "try again later",
                {"limit": "subscriptions", "max": self.max_subscriptions},
            )

    def subscribe(
        self, accepts: Callable[[Event], bool], user_id: int | None = None, by_cookie: bool = False
    ) -> Subscriber:
        """A new subscriber (on the loop); TOO_MANY when the process has its maximum."""
        self._check_room()
        subscriber = Subscriber(accepts, self.queue_size, self._wake, user_id, by_cookie)
        self._subscribers.add(subscriber)
        return subscriber

    def subscribe_direct(
        self,
        accepts: Callable[[Event], bool],
        key: Hashable,
        render: Callable[[Event], Awaitable[bytes]],
        prefix: bytes,
        write: Callable[[list[bytes]], int | None],
        user_id: int | None = None,
        by_cookie: bool = False,
    ) -> DirectSubscriber:
        """A new :class:`DirectSubscriber` (on the loop); TOO_MANY as :meth:`subscribe`."""
        self._check_room()
        subscriber = DirectSubscriber(
            accepts, key, render, prefix, write, self.queue_size, user_id, by_cookie
        )
        self._direct.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber | DirectSubscriber) -> None:
        if isinstance(subscriber, DirectSubscriber):
            self._direct.discard(subscriber)
            if not subscriber.ended.done():
                subscriber.ended.cancel()
            elif not subscriber.ended.cancelled():
                subscriber.ended.exception()  # seen: no "never retrieved" warning
        else:
            self._subscribers.discard(subscriber)

    def dispatch_threadsafe(self, events: list[Event]) -> None:
        if threading.get_ident() == self._loop_thread:
            self._dispatch(events)
            return
        # RuntimeError: the loop closed (shutdown): nobody is left to tell.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._dispatch, events)

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if event.kind == USERS_DISABLED:
                self._end_subscriptions_of(set(event.ids), disabled_error, cookie_only=False)
            elif event.kind == USERS_SIGNED_OUT:
                self._end_subscriptions_of(set(event.ids), signed_out_error, cookie_only=True)
        for subscriber in list(self._subscribers):
            subscriber.offer(events)
        if not self._direct:
            return
        for event in events:
            takers = [s for s in self._direct if s.accepts(event) and s.take()]
            if takers:
                self._fanout.append((event, takers))
        if self._fanout and self._fanout_task is None:
            self._fanout_task = self.loop.create_task(self._fan_out())

    def _end_subscriptions_of(
        self, user_ids: set[int], error: Callable[[], DomainError], cookie_only: bool
    ) -> None:
        """End the subscriptions of ``user_ids`` (only those made with a login cookie when
        ``cookie_only``) with ``error()``."""
        subscribers: list[Subscriber | DirectSubscriber] = [*self._subscribers, *self._direct]
        for subscriber in subscribers:
            if subscriber.user_id in user_ids and (subscriber.by_cookie or not cookie_only):
                subscriber.fail(error())

    async def _fan_out(self) -> None:
        """Write the queued events to their direct subscribers, in commit order: all the events
        queued so far are rendered first (once per key), then each subscriber gets its frames
        in one write, so a backlog (a burst of commits) costs one write per connection."""
        try:
            while self._fanout:
                backlog = list(self._fanout)
                self._fanout.clear()
                # Every render of the backlog is started before any is awaited: those that
                # read the database (the task, the counters) wait for it side by side.
                renders: list[tuple[Event, list[DirectSubscriber], asyncio.Future[bytes]]] = []
                for event, takers in backlog:
                    groups: dict[Hashable, list[DirectSubscriber]] = {}
                    for subscriber in takers:
                        subscriber.waiting -= 1
                        if not subscriber.ended.done():
                            groups.setdefault(subscriber.key, []).append(subscriber)
                    for group in groups.values():
                        started = asyncio.ensure_future(group[0].render(event))
                        renders.append((event, group, started))
                frames: dict[DirectSubscriber, list[bytes]] = {}
                for event, group, rendering in renders:
                    try:
                        payload = await rendering
                    except Exception as error:  # the subscribers' result could not be made
                        log.exception("live: rendering %s failed", event.kind)
                        for subscriber in group:
                            subscriber.fail(error)
                        continue
                    for subscriber in group:
                        frames.setdefault(subscriber, []).append(payload)
                written = 0
                for subscriber, payloads in frames.items():
                    try:
                        subscriber.deliver(payloads)
                    except Exception as error:  # a transport that broke under us
                        log.warning("live: a frame could not be written: %r", error)
                        subscriber.fail(error)
                    written += 1
                    if written >= FANOUT_BATCH:
                        written = 0
                        await asyncio.sleep(0)
        finally:
            self._fanout_task = None

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
