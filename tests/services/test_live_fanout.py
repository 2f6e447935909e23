"""The hub's fan-out to direct subscribers (server/services/events/hub.py): one render per
event and key, frames in commit order, one write per connection and backlog, requests served
between batches, and the connection's buffer as the subscriber's bound."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from server.errors import DomainError
from server.services.events import Event
from server.services.events.event import USERS_DISABLED, USERS_SIGNED_OUT
from server.services.events.hub import FANOUT_BATCH, OVERFLOW, TOO_MANY, LocalHub


class Connection:
    """Stands in for a FrameWriter: records each write; ``held`` says what the kernel refused
    (all of it: a peer that reads nothing), ``closed`` a connection going away."""

    def __init__(self, held_everything: bool = False) -> None:
        self.writes: list[list[bytes]] = []
        self.held_everything = held_everything
        self.closed = False
        self.held = 0

    def write(self, frames: list[bytes]) -> int | None:
        if self.closed:
            return None
        self.writes.append(frames)
        if self.held_everything:
            self.held += sum(len(f) for f in frames)
        return self.held

    @property
    def frames(self) -> list[bytes]:
        return [frame for frames in self.writes for frame in frames]


def renderer(calls: list[tuple[str, str]], key: str) -> Callable[[Event], asyncio.Future[bytes]]:
    def render(event: Event) -> asyncio.Future[bytes]:
        calls.append((key, event.kind))
        future = asyncio.get_running_loop().create_future()
        future.set_result(f'{{"{key}":"{event.kind}"}}'.encode())
        return future

    return render


def every(event: Event) -> bool:
    return True


async def settle(hub: LocalHub) -> None:
    while hub._fanout or hub._fanout_task is not None:
        await asyncio.sleep(0)


def test_each_event_is_rendered_once_per_key_and_each_connection_written_once() -> None:
    async def scenario() -> None:
        hub = LocalHub(asyncio.get_running_loop(), queue_size=10, max_subscriptions=10)
        calls: list[tuple[str, str]] = []
        a1, a2, b = Connection(), Connection(), Connection()
        hub.subscribe_direct(every, "A", renderer(calls, "A"), b'{"id":"1","p":', a1.write)
        hub.subscribe_direct(every, "A", renderer(calls, "A"), b'{"id":"2","p":', a2.write)
        only_two = lambda e: e.kind != "one"  # noqa: E731
        hub.subscribe_direct(only_two, "B", renderer(calls, "B"), b'{"id":"1","p":', b.write)
        hub.dispatch_threadsafe([Event("one", 1), Event("two", 1), Event("three", 1)])
        await settle(hub)
        assert sorted(calls) == sorted(
            [("A", "one"), ("A", "two"), ("A", "three"), ("B", "two"), ("B", "three")]
        )
        assert a1.writes == [
            [
                b'{"id":"1","p":{"A":"one"}}',
                b'{"id":"1","p":{"A":"two"}}',
                b'{"id":"1","p":{"A":"three"}}',
            ]
        ]
        assert a2.frames == [f.replace(b'"1"', b'"2"') for f in a1.frames]
        assert b.writes == [[b'{"id":"1","p":{"B":"two"}}', b'{"id":"1","p":{"B":"three"}}']]
        hub.dispatch_threadsafe([Event("four", 1)])
        await settle(hub)
        assert a1.frames[-1] == b'{"id":"1","p":{"A":"four"}}' and len(a1.writes) == 2

    asyncio.run(scenario())


def test_requests_are_served_between_batches_of_writes() -> None:
    async def scenario() -> None:
        hub = LocalHub(asyncio.get_running_loop(), queue_size=10, max_subscriptions=500)
        calls: list[tuple[str, str]] = []
        connections = [Connection() for _ in range(200)]
        seen_at: list[int] = []

        def written() -> int:
            return sum(len(c.writes) for c in connections)

        def request() -> None:  # an HTTP request's next step, ready while the fan-out runs
            seen_at.append(written())

        def writer(connection: Connection) -> Callable[[list[bytes]], int | None]:
            def write(frames: list[bytes]) -> int | None:
                if written() == 0:
                    asyncio.get_running_loop().call_soon(request)
                return connection.write(frames)

            return write

        for connection in connections:
            hub.subscribe_direct(every, "A", renderer(calls, "A"), b"{", writer(connection))
        hub.dispatch_threadsafe([Event("one", 1)])
        await settle(hub)
        assert all(len(c.writes) == 1 for c in connections)
        assert calls == [("A", "one")]
        assert seen_at == [FANOUT_BATCH]

    asyncio.run(scenario())


def test_a_connection_holding_more_than_queue_size_frames_ends_with_an_overflow() -> None:
    async def scenario() -> None:
        hub = LocalHub(asyncio.get_running_loop(), queue_size=3, max_subscriptions=10)
        calls: list[tuple[str, str]] = []
        stuck, fine = Connection(held_everything=True), Connection()
        slow = hub.subscribe_direct(every, "A", renderer(calls, "A"), b"{", stuck.write)
        fast = hub.subscribe_direct(every, "A", renderer(calls, "A"), b"{", fine.write)
        for n in range(3):
            hub.dispatch_threadsafe([Event(f"e{n}", 1)])
            await settle(hub)
        assert not slow.ended.done()
        hub.dispatch_threadsafe([Event("e3", 1)])
        await settle(hub)
        assert slow.ended.done()
        error = slow.ended.exception()
        assert isinstance(error, DomainError) and error.code == OVERFLOW
        assert error.details == {"limit": "queueSize", "max": 3}
        hub.dispatch_threadsafe([Event("e4", 1)])
        await settle(hub)
        assert len(stuck.frames) == 4 and len(fine.frames) == 5  # nothing more to the slow one
        assert not fast.ended.done()
        hub.unsubscribe(slow)
        assert hub.subscriber_count == 1

    asyncio.run(scenario())


def test_a_frame_the_kernel_took_no_longer_counts() -> None:
    async def scenario() -> None:
        hub = LocalHub(asyncio.get_running_loop(), queue_size=2, max_subscriptions=10)
        connection = Connection(held_everything=True)
        subscriber = hub.subscribe_direct(every, "A", renderer([], "A"), b"{", connection.write)
        for n in range(6):
            hub.dispatch_threadsafe([Event(f"e{n}", 1)])
            await settle(hub)
            connection.held = len(connection.frames[-1])  # all but the last frame were sent
        assert not subscriber.ended.done()

    asyncio.run(scenario())


def test_a_closed_connection_ends_its_subscription_quietly() -> None:
    async def scenario() -> None:
        hub = LocalHub(asyncio.get_running_loop(), queue_size=3, max_subscriptions=10)
        connection = Connection()
        subscriber = hub.subscribe_direct(every, "A", renderer([], "A"), b"{", connection.write)
        connection.closed = True
        hub.dispatch_threadsafe([Event("e", 1)])
        await settle(hub)
        assert subscriber.ended.done() and subscriber.ended.result() is None

    asyncio.run(scenario())


def test_a_failed_render_ends_only_the_subscribers_of_its_key() -> None:
    async def scenario() -> None:
        hub = LocalHub(asyncio.get_running_loop(), queue_size=3, max_subscriptions=10)

        async def broken(event: Event) -> bytes:
            raise RuntimeError("no answer")

        bad_connection, good_connection = Connection(), Connection()
        bad = hub.subscribe_direct(every, "bad", broken, b"{", bad_connection.write)
        good = hub.subscribe_direct(every, "A", renderer([], "A"), b"{", good_connection.write)
        hub.dispatch_threadsafe([Event("e", 1)])
        await settle(hub)
        assert isinstance(bad.ended.exception(), RuntimeError)
        assert bad_connection.writes == [] and good_connection.frames == [b'{{"A":"e"}}']
        assert not good.ended.done()

    asyncio.run(scenario())


def test_direct_and_queued_subscribers_share_the_process_limit() -> None:
    async def scenario() -> None:
        hub = LocalHub(asyncio.get_running_loop(), queue_size=3, max_subscriptions=2)
        hub.subscribe(every)
        direct = hub.subscribe_direct(every, "A", renderer([], "A"), b"{", Connection().write)
        assert hub.has_subscribers and hub.subscriber_count == 2
        with pytest.raises(DomainError) as refused:
            hub.subscribe_direct(every, "A", renderer([], "A"), b"{", Connection().write)
        assert refused.value.code == TOO_MANY
        hub.unsubscribe(direct)
        assert direct.ended.cancelled() and hub.subscriber_count == 1

    asyncio.run(scenario())


def test_the_renders_of_a_backlog_wait_for_the_database_side_by_side() -> None:
    async def scenario() -> None:
        hub = LocalHub(asyncio.get_running_loop(), queue_size=10, max_subscriptions=10)
        started: list[str] = []
        release = asyncio.Event()

        async def reading(event: Event) -> bytes:  # as a field that reads the task
            started.append(event.kind)
            await release.wait()
            return f'"{event.kind}"'.encode()

        connection = Connection()
        hub.subscribe_direct(every, "A", reading, b"{", connection.write)
        hub.dispatch_threadsafe([Event("one", 1), Event("two", 1)])

        async def both_started() -> None:
            while len(started) < 2:
                await asyncio.sleep(0)

        await asyncio.wait_for(both_started(), 5)  # one after the other: a TimeoutError
        assert connection.writes == []
        release.set()
        await settle(hub)
        assert connection.writes == [[b'{"one"}', b'{"two"}']]

    asyncio.run(scenario())


def test_renders_slower_than_commits_end_the_subscriber_instead_of_growing_the_backlog() -> None:
    async def scenario() -> None:
        hub = LocalHub(asyncio.get_running_loop(), queue_size=3, max_subscriptions=10)
        release = asyncio.Event()

        async def stuck_render(event: Event) -> bytes:  # a database that does not answer
            await release.wait()
            return f'"{event.kind}"'.encode()

        connection = Connection()
        subscriber = hub.subscribe_direct(every, "A", stuck_render, b"{", connection.write)
        hub.dispatch_threadsafe([Event("e0", 1)])
        await asyncio.sleep(0)  # the fan-out took e0 and waits for its render
        for n in range(1, 1000):
            hub.dispatch_threadsafe([Event(f"e{n}", 1)])
        assert subscriber.ended.done()
        error = subscriber.ended.exception()
        assert isinstance(error, DomainError) and error.code == OVERFLOW
        assert len(hub._fanout) == 4  # queue_size + 1 events, not 999
        release.set()
        await settle(hub)
        assert connection.writes == []  # an ended subscriber gets nothing more
        hub.unsubscribe(subscriber)
        hub.dispatch_threadsafe([Event("later", 1)])
        assert not hub._fanout

    asyncio.run(scenario())


def test_a_disabled_users_subscribers_end_and_the_others_go_on() -> None:
    async def scenario() -> None:
        hub = LocalHub(asyncio.get_running_loop(), queue_size=10, max_subscriptions=10)
        alice_conn, bob_conn = Connection(), Connection()
        alice = hub.subscribe_direct(every, "A", renderer([], "A"), b"{", alice_conn.write, 7)
        bob = hub.subscribe_direct(every, "A", renderer([], "A"), b"{", bob_conn.write, 8)
        anonymous = hub.subscribe_direct(every, "A", renderer([], "A"), b"{", Connection().write)
        queued = hub.subscribe(every, user_id=7)
        waiting = asyncio.ensure_future(queued.next())
        await asyncio.sleep(0)
        hub.dispatch_threadsafe([Event(USERS_DISABLED, 0, (7,)), Event("later", 1)])
        await settle(hub)
        error = alice.ended.exception()
        assert isinstance(error, DomainError) and error.code == "unauthenticated"
        assert alice_conn.frames == []  # nothing after the end
        assert not bob.ended.done() and not anonymous.ended.done()
        assert [f for f in bob_conn.frames if b"later" in f]
        with pytest.raises(DomainError) as ended:
            await asyncio.wait_for(waiting, 5)
        assert ended.value.code == "unauthenticated"

    asyncio.run(scenario())


def test_signing_out_ends_only_the_subscriptions_made_with_the_login_cookie() -> None:
    async def scenario() -> None:
        hub = LocalHub(asyncio.get_running_loop(), queue_size=10, max_subscriptions=10)
        cookie_conn, token_conn = Connection(), Connection()
        by_cookie = hub.subscribe_direct(
            every, "A", renderer([], "A"), b"{", cookie_conn.write, 7, by_cookie=True
        )
        by_token = hub.subscribe_direct(every, "A", renderer([], "A"), b"{", token_conn.write, 7)
        other = hub.subscribe_direct(
            every, "A", renderer([], "A"), b"{", Connection().write, 8, by_cookie=True
        )
        queued = hub.subscribe(every, user_id=7, by_cookie=True)
        waiting = asyncio.ensure_future(queued.next())
        await asyncio.sleep(0)
        hub.dispatch_threadsafe([Event(USERS_SIGNED_OUT, 0, (7,)), Event("later", 1)])
        await settle(hub)
        error = by_cookie.ended.exception()
        assert isinstance(error, DomainError) and error.code == "unauthenticated"
        assert "signed out" in error.message
        assert cookie_conn.frames == []
        assert not by_token.ended.done() and not other.ended.done()
        assert [f for f in token_conn.frames if b"later" in f]
        with pytest.raises(DomainError) as ended:
            await asyncio.wait_for(waiting, 5)
        assert ended.value.code == "unauthenticated"

    asyncio.run(scenario())
