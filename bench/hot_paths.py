"""The annotator's hot paths against a real server: four figures and their targets.

Starts a fresh ``labelgraph start <tmp>/bench_project --init`` process (as
``rest_workload.py``), sets a Text + Choices config and imports N tasks (default 100,000), then
measures, each over its own keep-alive connection:

* ``GET /api/health`` median (the floor: HTTP, middleware, one trivial stored operation),
* ``GET /api/tasks/<random id>`` median,
* ``POST /api/tasks/<id>/completions`` median (each to a different task),
* ``GET /api/tasks/<random id>`` throughput with 16 client threads, each on its own
  keep-alive connection, for ``--seconds`` seconds (requests/s).

Optionally (``--floor``) it also times a bare uvicorn app answering ``{}`` the same way: the
floor of this machine, client and HTTP server. Run from the repository root::

    python bench/hot_paths.py [--tasks 100000] [--reps 500] [--threads 16] [--db URL] [--floor]

Beside each figure it prints the server process's CPU time per request (user + system, all
its threads, from ``/proc/<pid>/stat``): on a shared machine that figure is much steadier than
latency, so compare it for A/B runs. Client and server share the machine's CPUs: note the load
average printed (``uptime``) and repeat a run when it is noisy. The script makes no assertions:
it only reports figures.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from figures import record
from rest_workload import (
    COMPLETION_BODY,
    HOST,
    REPO_ROOT,
    Client,
    Latency,
    Server,
    _raise_keyboard_interrupt,
    free_port,
    import_tasks,
    measure,
    reset_project,
    running_server,
    set_label_config,
    stop_server,
    tree_cpu_seconds,
    wait_until_healthy,
)

SEED = 20241130
TARGETS = {
    "health": 0.7,  # ms, median
    "task_get": 1.0,
    "completion_post": 1.3,
    "task_get_rate": 1000.0,  # requests/s with 16 threads
}
BARE_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})
"""


T = TypeVar("T")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, and of its live children (the
    uvicorn workers of ``--workers N``)."""
    return tree_cpu_seconds(pid)


def with_cpu(pid: int, work: Callable[[], T], requests: Callable[[T], int]) -> tuple[T, float]:
    """``work()``'s result and the server's CPU time per request during it, in ms (the
    warm-up requests included: they are few)."""
    before = cpu_seconds(pid)
    result = work()
    return result, (cpu_seconds(pid) - before) * 1000 / max(1, requests(result))


def get_latency(port: int, label: str, key: str, paths: list[str], warmups: int) -> Latency:
    client = Client(port)
    try:
        calls = [lambda path=path: client.request("GET", path) for path in paths]
        return measure(label, key, list(calls), warmups)
    finally:
        client.close()


def completion_latency(port: int, task_ids: list[int], warmups: int) -> Latency:
    client = Client(port)
    try:
        calls = [
            lambda task_id=task_id: client.request(
                "POST", f"/api/tasks/{task_id}/completions", COMPLETION_BODY, expect=(200, 201)
            )
            for task_id in task_ids
        ]
        return measure("POST /api/tasks/<id>/completions", "completion_post", list(calls), warmups)
    finally:
        client.close()


def threaded_rate(
    port: int, task_ids: list[int], threads: int, seconds: float
) -> tuple[float, int]:
    """Requests/s of ``threads`` clients fetching random tasks for ``seconds`` (after one
    second of warm-up), each on its own keep-alive connection; and how many requests were
    made in all (warm-up included)."""
    total = [0] * threads
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    timing = threading.Event()
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        rng = random.Random(SEED + index)
        client = Client(port)
        try:
            start.wait()
            while not stop.is_set():
                client.request("GET", f"/api/tasks/{rng.choice(task_ids)}")
                total[index] += 1
                if timing.is_set():
                    counts[index] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            stop.set()
        finally:
            client.close()

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    start.wait()
    time.sleep(1.0)  # warm-up: connections open, worker threads spawned
    timing.set()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    elapsed = time.perf_counter() - started
    for thread in pool:
        thread.join(timeout=30)
    if errors:
        raise RuntimeError(f"a client thread failed: {errors[0]!r}")
    return sum(counts) / elapsed, sum(total)


def bare_floor(reps: int, warmups: int, workdir: Path) -> tuple[Latency, float]:
    """Median latency of a bare uvicorn app (same client, same machine)."""
    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--host", HOST]
    command += ["--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=workdir, start_new_session=True)
    try:
        wait_until_healthy(Server(process, port, workdir / "bare.log"))
        paths = ["/"] * (reps + warmups)
        return with_cpu(
            process.pid,
            lambda: get_latency(port, "bare uvicorn app (floor)", "", paths, warmups),
            lambda _: reps + warmups,
        )
    finally:
        stop_server(process)


def verdict(value: float, target: float, higher_is_better: bool = False) -> str:
    good = value >= target if higher_is_better else value <= target
    return "ok" if good else "MISS"


def run(args: argparse.Namespace) -> int:
    rng = random.Random(SEED)
    runs = args.reps + args.warmups
    with tempfile.TemporaryDirectory(prefix="labelgraph-hot-") as tmp:
        floor = bare_floor(args.reps, args.warmups, Path(tmp)) if args.floor else None
        with running_server(Path(tmp), args.db, args.workers) as server:
            client = Client(server.port)
            try:
                reset_project(client)
                set_label_config(client)
            finally:
                client.close()
            print(f"importing {args.tasks:,} tasks ...", flush=True)
            _imported, task_ids = import_tasks(server.port, args.tasks, 10, rng)
            load_before = os.getloadavg()
            random_ids = [rng.choice(task_ids) for _ in range(runs)]
            pid = server.process.pid
            port = server.port
            cpu: dict[str, float] = {}
            health, cpu["health"] = with_cpu(
                pid,
                lambda: get_latency(
                    port, "GET /api/health", "health", ["/api/health"] * runs, args.warmups
                ),
                lambda _: runs,
            )
            task_get, cpu["task_get"] = with_cpu(
                pid,
                lambda: get_latency(
                    port,
                    "GET /api/tasks/<random id>",
                    "task_get",
                    [f"/api/tasks/{i}" for i in random_ids],
                    args.warmups,
                ),
                lambda _: runs,
            )
            completion, cpu["completion_post"] = with_cpu(
                pid,
                lambda: completion_latency(port, sorted(task_ids)[:runs], args.warmups),
                lambda _: runs,
            )
            (rate, _made), cpu["task_get_rate"] = with_cpu(
                pid,
                lambda: threaded_rate(port, task_ids, args.threads, args.seconds),
                lambda result: result[1],
            )
            load_after = os.getloadavg()
    print(f"\n=== hot paths at {args.tasks:,} tasks (db {args.db or 'SQLite'}) ===")
    header = f"{'figure':<44} {'median':>10} {'p95':>9} {'target':>10}  verdict  server CPU/request"
    print(header)
    print("-" * len(header))
    if floor is not None:
        latency, floor_cpu = floor
        print(
            f"{latency.label:<44} {latency.median:>7.3f} ms {latency.p95:>6.3f} ms "
            f"{'':>10}  {'':<7}  {floor_cpu:.3f} ms"
        )
    for latency in (health, task_get, completion):
        key = latency.target_key or ""
        target = TARGETS[key]
        print(
            f"{latency.label:<44} {latency.median:>7.3f} ms {latency.p95:>6.3f} ms "
            f"{'<= ' + format(target, 'g'):>10}  {verdict(latency.median, target):<7}  "
            f"{cpu[key]:.3f} ms"
        )
    target = TARGETS["task_get_rate"]
    label = f"GET /api/tasks/<id>, {args.threads} threads"
    print(
        f"{label:<44} {rate:>6,.0f}/s {'':>9} {'>= ' + format(target, ',.0f'):>10}  "
        f"{verdict(rate, target, higher_is_better=True):<7}  {cpu['task_get_rate']:.3f} ms"
    )
    print(
        "load average (1, 5, 15 min): "
        f"{' '.join(f'{x:.2f}' for x in load_before)} -> {' '.join(f'{x:.2f}' for x in load_after)}"
    )
    for key, latency in (
        ("health", health),
        ("task_get", task_get),
        ("completion_post", completion),
    ):
        record(f"{key}_ms", latency.median)
        record(f"{key}_cpu_ms", cpu[key])
    record("task_get_rate", rate)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="project size")
    parser.add_argument("--reps", type=int, default=500, help="timed requests per latency row")
    parser.add_argument("--warmups", type=int, default=20, help="untimed requests per row")
    parser.add_argument("--threads", type=int, default=16, help="client threads for the rate")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds for the rate")
    parser.add_argument("--db", help="database URL passed to the server (e.g. postgresql://…)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the server")
    parser.add_argument("--floor", action="store_true", help="also time a bare uvicorn app")
    args = parser.parse_args(argv)
    if args.tasks < args.reps + args.warmups:
        parser.error("--tasks must be at least --reps + --warmups")
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # stop the servers too
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, repo {REPO_ROOT}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
