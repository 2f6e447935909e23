"""Many writers at once: concurrent clients POSTing completions to a few tasks.

Starts a fresh ``labelgraph start`` process (as ``rest_workload.py``), sets a Text + Choices
config and imports ``--tasks`` tasks (default 50), then ``--clients`` clients (default 32), each
on its own keep-alive connection, POST ``--posts`` completions each (default 100) to tasks
picked at random among the first ``--targets`` (default 50), all starting together. It prints:

* throughput (completion POSTs/s over the wall time of the burst) and latency p50/p95/p99/max,
* completions sent, answered with a distinct id, and stored (the tasks' completions counted
  back through ``GET /api/tasks/<id>``, and the project's counter): a lost or duplicated write
  shows as a difference,
* the server process's CPU time per POST (``/proc/<pid>/stat``: steadier than latency on a
  shared machine; use it for A/B comparisons),
* the load average before and after.

The clients run in ``--processes`` forked processes (default 4, 8 threads each) so that the
client side's own interpreter lock does not cap the rate. They share the machine's cores with
the server, so their own CPU per POST is printed too (``getrusage`` of the client processes
over the burst). Each client is by default a raw keep-alive socket writing a request built
once per task and reading the answer by its ``Content-Length`` (``--client raw``): a complete
HTTP/1.1 exchange through the server's whole stack, at a fraction of ``http.client``'s CPU
(``--client http.client``, the client before 2026-12-01, for comparison). Run from the
repository root::

    python bench/concurrent_writers.py [--clients 32] [--posts 100] [--tasks 50] [--targets 50]
        [--processes 4] [--client raw|http.client] [--db URL] [--workers N]

``--clients 1 --processes 1 --tasks 100000 --targets 1000`` gives the server CPU of single
completion POSTs, mostly each a task's first, in a large project.

It makes no assertions: it only reports figures (goal: >= 1,000 POSTs/s, p99 <= 50 ms).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from figures import record
from rest_workload import (
    COMPLETION_BODY,
    HOST,
    REQUEST_TIMEOUT,
    Client,
    _raise_keyboard_interrupt,
    import_tasks,
    reset_project,
    running_server,
    set_label_config,
    tree_cpu_seconds,
)

SEED = 20261130
GOAL_RATE = 1000.0
GOAL_P99_MS = 50.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, and of its live children (the
    uvicorn workers of ``--workers N``)."""
    return tree_cpu_seconds(pid)


class RawClient:
    """One keep-alive HTTP/1.1 connection on a plain socket: each completion POST is bytes
    built once per task, the answer is read up to its ``Content-Length``. The server sees the
    same requests as from ``http.client`` (request line, Host, Content-Type, Content-Length,
    body); the client spends a fraction of the CPU on them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=REQUEST_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.requests: dict[int, bytes] = {}

    def close(self) -> None:
        self.sock.close()

    def post_completion(self, task_id: int) -> bytes:
        request = self.requests.get(task_id)
        if request is None:
            request = self._request("POST", f"/api/tasks/{task_id}/completions", COMPLETION_BODY)
            self.requests[task_id] = request
        self.sock.sendall(request)
        return self._response(201)

    def get(self, path: str) -> bytes:
        self.sock.sendall(self._request("GET", path, None))
        return self._response(200)

    def _request(self, method: str, path: str, body: bytes | None) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
        head += "Accept-Encoding: identity\r\n"
        if body is None:
            return (head + "\r\n").encode()
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    def _response(self, expect: int) -> bytes:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        while end < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buffer += chunk
            end = buffer.find(b"\r\n\r\n")
        head = buffer[:end]
        status = int(head[9:12])
        start = head.lower().find(b"content-length:")
        if start < 0:
            raise RuntimeError(f"no Content-Length in {head[:300]!r}")
        line_end = head.find(b"\r\n", start)
        length = int(head[start + 15 : line_end if line_end >= 0 else len(head)])
        body_end = end + 4 + length
        while len(buffer) < body_end:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buffer += chunk
        body, self.buffer = buffer[end + 4 : body_end], buffer[body_end:]
        if status != expect:
            raise RuntimeError(f"POST -> {status}: {body[:300]!r}")
        return body


def _client_thread(
    port: int,
    task_ids: list[int],
    posts: int,
    seed: int,
    start: threading.Barrier,
    out: list,
    kind: str,
) -> None:
    rng = random.Random(seed)
    client: Client | RawClient = RawClient(port) if kind == "raw" else Client(port)
    try:
        # the connection open (and used once) before the start
        if isinstance(client, RawClient):
            client.get("/api/health")
        else:
            client.request("GET", "/api/health")
        start.wait()
        for _ in range(posts):
            task_id = rng.choice(task_ids)
            sent = time.perf_counter()
            if isinstance(client, RawClient):
                answer = client.post_completion(task_id)
            else:
                answer = client.request(
                    "POST", f"/api/tasks/{task_id}/completions", COMPLETION_BODY, expect=(201,)
                )
            out.append((json.loads(answer)["id"], (time.perf_counter() - sent) * 1000.0))
    except BaseException as exc:  # reported by the parent
        out.append(("error", repr(exc)))
    finally:
        client.close()


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _client_process(
    port: int,
    task_ids: list[int],
    threads: int,
    posts: int,
    first: int,
    conn: Connection,
    kind: str,
) -> None:
    results: list[list] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    pool = [
        threading.Thread(
            target=_client_thread,
            args=(port, task_ids, posts, SEED + first + i, start, results[i], kind),
            daemon=True,
        )
        for i in range(threads)
    ]
    for thread in pool:
        thread.start()
    conn.send("ready")
    conn.recv()  # go
    cpu = _cpu_self()
    start.wait()
    for thread in pool:
        thread.join()
    cpu = _cpu_self() - cpu
    conn.send(([row for rows in results for row in rows], cpu))
    conn.close()


def burst(
    port: int, task_ids: list[int], clients: int, processes: int, posts: int, kind: str = "raw"
) -> tuple:
    """Run the clients; (completion ids, latencies in ms, wall seconds, errors, the client
    processes' CPU seconds over the burst)."""
    context = multiprocessing.get_context("fork")
    per = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    children = []
    first = 0
    for threads in per:
        if not threads:
            continue
        parent, child = context.Pipe()
        process = context.Process(
            target=_client_process,
            args=(port, task_ids, threads, posts, first, child, kind),
            daemon=True,
        )
        process.start()
        children.append((process, parent))
        first += threads
    for _process, parent in children:
        parent.recv()
    started = time.perf_counter()
    for _process, parent in children:
        parent.send("go")
    rows: list = []
    client_cpu = 0.0
    for _process, parent in children:
        got, cpu = parent.recv()
        rows += got
        client_cpu += cpu
    wall = time.perf_counter() - started
    for process, _parent in children:
        process.join(10)
    errors = [r[1] for r in rows if r[0] == "error"]
    done = [r for r in rows if r[0] != "error"]
    return [r[0] for r in done], [r[1] for r in done], wall, errors, client_cpu


def stored_counts(port: int, task_ids: list[int]) -> tuple[int, int]:
    """(completions listed on the tasks, the project's completion counter)."""
    client = Client(port)
    try:
        listed = sum(
            len(json.loads(client.request("GET", f"/api/tasks/{i}")).get("completions", []))
            for i in task_ids
        )
        query = json.dumps({"query": "{ project { completionCount } }"}).encode()
        answer = json.loads(client.request("POST", "/graphql", query))
        counter = int(answer["data"]["project"]["completionCount"])
    finally:
        client.close()
    return listed, counter


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100.0 * (len(ordered) - 1)))]


def run(args: argparse.Namespace) -> int:
    with (
        tempfile.TemporaryDirectory(prefix="labelgraph-writers-") as tmp,
        running_server(Path(tmp), args.db, args.workers) as server,
    ):
        client = Client(server.port)
        try:
            reset_project(client)
            set_label_config(client)
        finally:
            client.close()
        _figures, imported = import_tasks(server.port, args.tasks, 0, random.Random(SEED))
        task_ids = sorted(imported)[: args.targets]
        # warm-up: every worker thread's first request, the stored operations' caches
        burst(server.port, task_ids, args.clients, args.processes, 3, args.client)
        before_listed, before_counter = stored_counts(server.port, task_ids)
        load_before = os.getloadavg()
        cpu_start = cpu_seconds(server.process.pid)
        ids, latencies, wall, errors, client_cpu = burst(
            server.port, task_ids, args.clients, args.processes, args.posts, args.client
        )
        cpu = cpu_seconds(server.process.pid) - cpu_start
        load_after = os.getloadavg()
        listed, counter = stored_counts(server.port, task_ids)
    sent = args.clients * args.posts
    rate = len(latencies) / wall
    p99 = percentile(latencies, 99) if latencies else float("nan")
    print(
        f"\n=== {args.clients} writers x {args.posts} completion POSTs to {len(task_ids)} of "
        f"{args.tasks:,} tasks "
        f"(db {args.db or 'SQLite'}, client {args.client}) ==="
    )
    print(f"throughput        {rate:,.0f} POSTs/s over {wall:.2f} s  (goal >= {GOAL_RATE:,.0f})")
    if latencies:
        print(
            f"latency           p50 {statistics.median(latencies):.1f} ms, "
            f"p95 {percentile(latencies, 95):.1f} ms, p99 {p99:.1f} ms, "
            f"max {max(latencies):.1f} ms  (goal p99 <= {GOAL_P99_MS:g} ms)"
        )
    print(
        f"writes            sent {sent:,}, answered {len(ids):,} ({len(set(ids)):,} distinct ids), "
        f"stored {listed - before_listed:,} (project counter +{counter - before_counter:,}), "
        f"errors {len(errors)}"
    )
    if errors:
        print(f"first error       {errors[0]}")
    print(f"server CPU        {cpu * 1000 / max(1, len(latencies)):.2f} ms per POST")
    print(
        f"client CPU        {client_cpu * 1000 / max(1, len(latencies)):.2f} ms per POST "
        f"({args.processes} client processes)"
    )
    stored = listed - before_listed
    duplicated = len(ids) - len(set(ids))
    key = "writers" if args.workers == 1 else f"writers_{args.workers}w"  # throughput.FIGURES
    record(f"{key}_rate", rate)
    record(f"{key}_p99_ms", p99)
    record(
        f"{key}_lost", abs(stored - len(ids)) + duplicated + abs(counter - before_counter - stored)
    )
    record(f"{key}_errors", len(errors))
    print(
        "load average (1, 5, 15 min): "
        f"{' '.join(f'{x:.2f}' for x in load_before)} -> {' '.join(f'{x:.2f}' for x in load_after)}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent writers")
    parser.add_argument("--posts", type=int, default=100, help="completion POSTs per writer")
    parser.add_argument("--tasks", type=int, default=50, help="tasks imported")
    parser.add_argument(
        "--targets", type=int, default=50, help="the first N tasks, which the writers share"
    )
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument(
        "--client",
        choices=("raw", "http.client"),
        default="raw",
        help="raw keep-alive sockets (default) or http.client connections",
    )
    parser.add_argument("--db", help="database URL passed to the server (e.g. postgresql://…)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the server")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # stop the server too
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
