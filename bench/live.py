"""Subscriptions under load: 200 subscribers on one server process while 1,000 completions are
posted. Reports the delivery latency (p50/p99) and the completion POST p99 with and without
subscribers (the issue's bar: with subscribers it must not double).

Starts a fresh ``labelgraph start`` process (as ``rest_workload.py``), sets a Text + Choices
config, imports ``2 x --completions`` tasks, then:

1. posts ``--completions`` completions (each to its own task) with no subscriber: POST latency;
2. opens ``--subscribers`` WebSocket connections (``graphql-transport-ws``), each subscribed to
   ``completionChanged { completionIds }``, all in one asyncio client thread, and waits until
   each has seen a first probe completion;
3. posts ``--completions`` more completions: POST latency with subscribers, and for every
   (subscriber, completion) pair the delivery latency, measured from the moment the POST's
   answer arrived (the commit happened before it) and from the moment the POST was sent (an
   upper bound of commit-to-delivery).

Client and server share the machine's CPUs (the 200 receiving clients run in one Python thread
of a child process; ``--lean-clients``: a minimal client that costs less CPU per message): note
the load average and repeat when noisy. Run from the repository root::

    python bench/live.py [--subscribers 200] [--completions 1000] [--db URL] [--lean-clients]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
from rest_workload import (
    COMPLETION_BODY,
    Client,
    import_tasks,
    reset_project,
    running_server,
    set_label_config,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

SUBSCRIPTION = "subscription { completionChanged { completionIds } }"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class Subscribers:
    """N subscriptions in one event loop thread; records when each completion id arrived."""

    def __init__(self, port: int, count: int) -> None:
        self.url = f"ws://127.0.0.1:{port}/graphql"
        self.count = count
        self.arrivals: dict[int, list[float]] = {}
        self.errors: list[str] = []
        self._sockets: list[ClientConnection] = []
        self._lean: list[_LeanProtocol] = []
        self._closing = False
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._tasks = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()

    async def _start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._one(n)) for n in range(self.count)]

    async def _one(self, number: int) -> None:
        # Lean on purpose: the clients share the CPUs with the server, and at ~6,000 messages a
        # second a timer per ``recv`` (``wait_for``) and the standard json module made them,
        # not the server, the delivery bottleneck. ``close`` ends the loop by closing sockets.
        try:
            async with connect(
                self.url,
                subprotocols=["graphql-transport-ws"],
                max_queue=None,  # type: ignore[list-item]
            ) as ws:
                self._sockets.append(ws)
                await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                payload = {"query": SUBSCRIPTION}
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
                arrivals = self.arrivals
                async for raw in ws:
                    now = time.perf_counter()
                    message = orjson.loads(raw)
                    if message["type"] == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                        continue
                    if message["type"] != "next":
                        self.errors.append(str(message)[:200])
                        return
                    for ident in message["payload"]["data"]["completionChanged"]["completionIds"]:
                        arrivals.setdefault(ident, []).append(now)
        except ConnectionClosed:
            if not self._closing:
                self.errors.append(f"subscriber {number}: closed by the server")
        except Exception as exc:
            self.errors.append(f"subscriber {number}: {exc!r}")

    def received(self, ident: int) -> int:
        return len(self.arrivals.get(ident, []))

    def received_total(self, idents: list[int]) -> int:
        return sum(self.received(ident) for ident in idents)

    async def _close_all(self) -> None:
        self._closing = True
        await asyncio.gather(*(ws.close() for ws in self._sockets), return_exceptions=True)
        await asyncio.wait(self._tasks)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close_all(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _client_frame(opcode: int, data: bytes) -> bytes:
    """A masked client frame (RFC 6455: a client must mask), for the few messages sent."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    if len(data) < 126:
        header = bytes((0x80 | opcode, 0x80 | len(data)))
    else:
        header = bytes((0x80 | opcode, 0x80 | 126)) + len(data).to_bytes(2, "big")
    return header + mask + masked


class _LeanProtocol(asyncio.Protocol):
    """One subscription: the handshake, then frames parsed from ``data_received`` buffers."""

    def __init__(self, owner: LeanSubscribers, number: int, port: int) -> None:
        self.owner = owner
        self.number = number
        self.port = port
        self.buffer = bytearray()
        self.upgraded = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )

    def send(self, opcode: int, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(_client_frame(opcode, data))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.fail(f"handshake refused: {bytes(buffer[:80])!r}")
                return
            del buffer[: end + 4]
            self.upgraded = True
            self.send(1, json.dumps({"type": "connection_init", "payload": {}}).encode())
            payload = {"query": SUBSCRIPTION}
            self.send(1, json.dumps({"id": "1", "type": "subscribe", "payload": payload}).encode())
        arrivals = self.owner.arrivals
        position = 0
        while len(buffer) - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            length, start = second & 0x7F, position + 2
            if length == 126:
                if len(buffer) - position < 4:
                    break
                length, start = (
                    int.from_bytes(buffer[position + 2 : position + 4], "big"),
                    start + 2,
                )
            elif length == 127:
                if len(buffer) - position < 10:
                    break
                length, start = (
                    int.from_bytes(buffer[position + 2 : position + 10], "big"),
                    start + 8,
                )
            if len(buffer) < start + length:
                break
            data = bytes(buffer[start : start + length])
            position = start + length
            opcode = first & 0x0F
            if opcode == 9:  # the server's keep-alive ping
                self.send(10, data)
                continue
            if opcode == 8:
                self.fail("closed by the server")
                return
            message = orjson.loads(data)
            kind = message["type"]
            if kind == "next":
                for ident in message["payload"]["data"]["completionChanged"]["completionIds"]:
                    arrivals.setdefault(ident, []).append(now)
            elif kind == "ping":
                self.send(1, b'{"type":"pong"}')
            elif kind != "connection_ack":
                self.fail(str(message)[:200])
                return
        del buffer[:position]

    def fail(self, reason: str) -> None:
        if not self.owner._closing:
            self.owner.errors.append(f"subscriber {self.number}: {reason}")
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.owner._closing and not self.done.done():
            self.owner.errors.append(f"subscriber {self.number}: connection lost")
        if not self.done.done():
            self.done.set_result(None)


class LeanSubscribers(Subscribers):
    """The same subscriptions over a minimal WebSocket client (an asyncio protocol parsing the
    frames itself): a few µs of client work per message instead of the ``websockets``
    client's tens, so that less of the machine's CPU goes to the receiving side."""

    async def _one(self, number: int) -> None:
        try:
            loop = asyncio.get_running_loop()
            _transport, protocol = await loop.create_connection(
                lambda: _LeanProtocol(self, number, self.port), "127.0.0.1", self.port
            )
            self._lean.append(protocol)
            await protocol.done
        except Exception as exc:
            self.errors.append(f"subscriber {number}: {exc!r}")

    async def _close_all(self) -> None:
        self._closing = True
        for protocol in self._lean:
            if protocol.transport is not None:
                protocol.transport.close()
        await asyncio.wait(self._tasks)


def _subscriber_process(port: int, count: int, lean: bool, conn: Connection) -> None:
    subscribers = (LeanSubscribers if lean else Subscribers)(port, count)
    while True:
        command, argument = conn.recv()
        if command == "received":
            conn.send(subscribers.received_total(argument))
        elif command == "errors":
            conn.send(subscribers.errors[:3])
        else:
            subscribers.close()
            conn.send((subscribers.arrivals, subscribers.errors[:3]))
            return


class SubscriberProcess:
    """:class:`Subscribers` in a child process: the receiving clients' Python work does not
    hold the GIL of the thread that times the POSTs (it still shares the CPUs)."""

    def __init__(self, port: int, count: int, lean: bool = False) -> None:
        self.conn, child = multiprocessing.get_context("fork").Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=_subscriber_process, args=(port, count, lean, child), daemon=True
        )
        self.process.start()
        self.arrivals: dict[int, list[float]] = {}
        self._errors: list[str] | None = None  # known once closed

    def _ask(self, command: str, argument: Any = None) -> Any:
        self.conn.send((command, argument))
        return self.conn.recv()

    def received(self, ident: int) -> int:
        return int(self._ask("received", [ident]))

    def received_total(self, idents: list[int]) -> int:
        return int(self._ask("received", idents))

    @property
    def errors(self) -> list[str]:
        return self._errors if self._errors is not None else list(self._ask("errors"))

    def close(self) -> None:
        self.arrivals, self._errors = self._ask("close")
        self.process.join(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post_completions(client: Client, task_ids: list[int]) -> list[tuple[int, float, float]]:
    """(completion id, sent at, answered at) per POST, one after another."""
    timings = []
    for task_id in task_ids:
        sent = time.perf_counter()
        answer = client.request("POST", f"/api/tasks/{task_id}/completions", COMPLETION_BODY)
        answered = time.perf_counter()
        timings.append((int(json.loads(answer)["id"]), sent, answered))
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--completions", type=int, default=1000)
    parser.add_argument("--db", default=None, help="database URL (default: SQLite)")
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="run the subscribers in this process's second thread (the first figures' setup: "
        "their work then delays the timed POSTs through the GIL)",
    )
    parser.add_argument(
        "--lean-clients",
        action="store_true",
        help="receive with a minimal WebSocket client (frames parsed by the script) instead of "
        "the websockets package: less client CPU taken from the server",
    )
    options = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as workdir,
        running_server(Path(workdir), options.db) as server,
    ):
        setup = Client(server.port)
        reset_project(setup)
        set_label_config(setup)
        setup.close()
        count = options.completions
        _figures, task_ids = import_tasks(server.port, 2 * count + 100, 0, random.Random(1))
        quiet, loaded, probes = task_ids[:count], task_ids[count : 2 * count], task_ids[2 * count :]
        client = Client(server.port)
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        cpu_start = cpu_seconds(server.process.pid)
        baseline = post_completions(client, quiet)
        base_cpu = cpu_seconds(server.process.pid) - cpu_start
        base_ms = [(answered - sent) * 1000 for _, sent, answered in baseline]

        subscribers: Subscribers | SubscriberProcess = (
            Subscribers(server.port, options.subscribers)
            if options.same_process
            else SubscriberProcess(server.port, options.subscribers, options.lean_clients)
        )
        probe_ids: list[int] = []
        while not any(subscribers.received(p) >= options.subscribers for p in probe_ids):
            if not probes or subscribers.errors:  # probe until every subscription saw one
                print("subscribers not ready:", subscribers.errors[:3], file=sys.stderr)
                return 1
            probe_ids.append(post_completions(client, [probes.pop()])[0][0])
            time.sleep(0.5)
        print(f"{options.subscribers} subscribers ready")

        client_pid = getattr(getattr(subscribers, "process", None), "pid", None)
        client_start = cpu_seconds(client_pid) if client_pid is not None else 0.0
        cpu_start = cpu_seconds(server.process.pid)
        loaded_timings = post_completions(client, loaded)
        load_ms = [(answered - sent) * 1000 for _, sent, answered in loaded_timings]
        expected = options.subscribers * len(loaded_timings)
        deadline = time.monotonic() + 60
        loaded_ids = [c for c, _, _ in loaded_timings]
        while subscribers.received_total(loaded_ids) < expected:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        load_cpu = cpu_seconds(server.process.pid) - cpu_start
        client_cpu = cpu_seconds(client_pid) - client_start if client_pid is not None else None
        subscribers.close()
        from_answer: list[float] = []
        from_send: list[float] = []
        for ident, sent, answered in loaded_timings:
            for arrived in subscribers.arrivals.get(ident, []):
                from_answer.append((arrived - answered) * 1000)
                from_send.append((arrived - sent) * 1000)
        print(f"load average after: {os.getloadavg()[0]:.2f}")

    got = len(from_answer)
    print(f"deliveries: {got} of {expected} ({options.subscribers} x {len(loaded_timings)})")
    if subscribers.errors:
        print("subscriber errors:", subscribers.errors[:3])
    print(
        f"delivery latency after the POST's answer: p50 {statistics.median(from_answer):.1f} ms"
        f", p99 {percentile(from_answer, 0.99):.1f} ms"
    )
    print(
        f"delivery latency after the POST was sent: p50 {statistics.median(from_send):.1f} ms"
        f", p99 {percentile(from_send, 0.99):.1f} ms"
    )
    base_p99, load_p99 = percentile(base_ms, 0.99), percentile(load_ms, 0.99)
    print(
        f"completion POST without subscribers: p50 {statistics.median(base_ms):.2f} ms, "
        f"p99 {base_p99:.2f} ms"
    )
    print(
        f"completion POST with {options.subscribers} subscribers: p50 "
        f"{statistics.median(load_ms):.2f} ms, p99 {load_p99:.2f} ms "
        f"({load_p99 / base_p99:.2f}x)"
    )
    print(
        f"server CPU per completion: {base_cpu / len(quiet) * 1000:.2f} ms without subscribers, "
        f"{load_cpu / len(loaded_timings) * 1000:.2f} ms with {options.subscribers} (until "
        "every delivery was written)"
    )
    if client_cpu is not None:
        print(
            f"subscriber process CPU per completion: {client_cpu / len(loaded_timings) * 1000:.2f}"
            " ms (the receiving clients, on the same CPUs)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
