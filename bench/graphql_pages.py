"""GraphQL task pages against a real server: the median of a page of 100 and its SQL statements.

For each size (default 100,000 and 1,000,000 tasks) it starts a fresh ``labelgraph start``
process (as ``hot_paths.py``; ``--db`` for PostgreSQL), imports the tasks (every 10th with a
scored prediction), gives the first 200 tasks one completion each, then times over one
keep-alive connection ``POST /graphql`` with::

    query($n: Int!) { project { tasks(first: $n) {
      nodes { id data completions { id result } predictions { score result } } } } }

for ``first`` 100 (the goal: a median of at most 8 ms at 1M tasks), 10 and 1, the second page
of 100 (``after`` the first's cursor), and REST's page of 100 beside it (``GET
/api/tasks?page_size=100``). It also runs the page of 100, 10 and 1 in-process on the same
database and counts its SQL statements (they must not grow with the page size: DataLoaders),
and times the page of 100 in-process (CPU time of the execution alone, median of 50).
Beside each latency it prints the server's CPU time per request (``/proc/<pid>/stat``), which
is steadier than latency on a shared machine. Run from the repository root::

    python bench/graphql_pages.py [--sizes 100000 1000000] [--reps 300] [--db URL]

No assertions: it only reports figures, with the load average (``uptime``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from figures import record
from hot_paths import cpu_seconds
from rest_workload import (
    COMPLETION_BODY,
    REPO_ROOT,
    Client,
    Latency,
    _raise_keyboard_interrupt,
    import_tasks,
    measure,
    reset_project,
    running_server,
    set_label_config,
)

sys.path.insert(0, str(REPO_ROOT))

SEED = 20261130
TARGET_MS = 8.0
LABELED = 200
PAGE = (
    "query Page($n: Int!, $after: String) { project { tasks(first: $n, after: $after) {"
    " nodes { id data completions { id result } predictions { score result } }"
    " pageInfo { endCursor } } } }"
)


def graphql_body(n: int, after: str | None = None) -> bytes:
    return json.dumps({"query": PAGE, "variables": {"n": n, "after": after}}).encode()


def page_latency(
    port: int, pid: int, label: str, method: str, path: str, body: bytes | None, runs: int
) -> tuple[Latency, float]:
    client = Client(port)
    try:
        before = cpu_seconds(pid)
        latency = measure(label, None, [lambda: client.request(method, path, body)] * runs, 20)
        return latency, (cpu_seconds(pid) - before) * 1000 / runs
    finally:
        client.close()


def statements(db_url: str, project_id: int) -> tuple[dict[int, int], float]:
    """SQL statements of the page query in-process, by page size; and the median CPU time
    (this process's) of the page of 100 executed in-process (no HTTP, no thread hop)."""
    from schema import schema
    from schema.context import Context
    from server import db
    from server.settings import Settings
    from tests.query_log import count_queries

    if db.database.obj is None:
        db.connect(db_url, 2)
    settings = Settings.from_env()
    counts = {}
    for n in (100, 10, 1):
        context = Context(settings=settings, project_id=project_id)
        with db.database.connection_context(), count_queries() as counter:
            result = schema.execute_sync(PAGE, {"n": n}, context_value=context)
        if result.errors:
            raise RuntimeError(f"page of {n}: {result.errors[0]}")
        assert result.data is not None
        assert len(result.data["project"]["tasks"]["nodes"]) == n
        counts[n] = counter.count
    cpu = []
    with db.database.connection_context():
        for _ in range(50):
            context = Context(settings=settings, project_id=project_id)
            started = time.process_time()
            schema.execute_sync(PAGE, {"n": 100}, context_value=context)
            cpu.append((time.process_time() - started) * 1000)
    db.database.close()
    db.database.initialize(None)
    return counts, statistics.median(cpu)


def run_size(size: int, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(SEED)
    runs = args.reps + 20
    with (
        tempfile.TemporaryDirectory(prefix="labelgraph-gqlpages-") as tmp,
        running_server(Path(tmp), args.db) as server,
    ):
        client = Client(server.port)
        try:
            reset_project(client)
            set_label_config(client)
            body = json.dumps({"query": "{ project { id } }"}).encode()
            project_id = int(
                json.loads(client.request("POST", "/graphql", body))["data"]["project"]["id"]
            )
        finally:
            client.close()
        print(f"importing {size:,} tasks ...", flush=True)
        _imported, task_ids = import_tasks(server.port, size, 10, rng)
        client = Client(server.port)
        try:
            for task_id in sorted(task_ids)[:LABELED]:
                path = f"/api/tasks/{task_id}/completions"
                client.request("POST", path, COMPLETION_BODY, expect=(200, 201))
            first = json.loads(client.request("POST", "/graphql", graphql_body(100)))
        finally:
            client.close()
        cursor = first["data"]["project"]["tasks"]["pageInfo"]["endCursor"]
        pid, port = server.process.pid, server.port
        rows = [
            page_latency(port, pid, f"GraphQL tasks(first: {n})", "POST", "/graphql", b, runs)
            for n, b in (
                (100, graphql_body(100)),
                (10, graphql_body(10)),
                (1, graphql_body(1)),
            )
        ]
        rows.append(
            page_latency(
                port,
                pid,
                "GraphQL tasks(first: 100, after: page 1)",
                "POST",
                "/graphql",
                graphql_body(100, cursor),
                runs,
            )
        )
        path = "/api/tasks?page=1&page_size=100"
        rows.append(
            page_latency(port, pid, "REST GET /api/tasks?page_size=100", "GET", path, None, runs)
        )
        db_url = args.db or _sqlite_url(Path(tmp))
        counts, in_process = statements(db_url, project_id)
    return {"size": size, "rows": rows, "statements": counts, "in_process": in_process}


def _sqlite_url(workdir: Path) -> str:
    from server.settings import Settings

    settings = Settings.from_env(project_dir=str(workdir / "bench_project"))
    return settings.resolved_database_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--reps", type=int, default=300, help="timed requests per row")
    parser.add_argument("--db", help="database URL passed to the server (e.g. postgresql://…)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # stop the servers too
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, repo {REPO_ROOT}")
    load_before = os.getloadavg()
    results = [run_size(size, args) for size in args.sizes]
    load_after = os.getloadavg()
    for result in results:
        print(f"\n=== GraphQL pages at {result['size']:,} tasks (db {args.db or 'SQLite'}) ===")
        header = f"{'page':<44} {'median':>10} {'p95':>10}  {'server CPU/request':>18}"
        print(header)
        print("-" * len(header))
        for latency, cpu in result["rows"]:
            print(
                f"{latency.label:<44} {latency.median:>7.2f} ms {latency.p95:>7.2f} ms "
                f"{cpu:>15.2f} ms"
            )
        counts = result["statements"]
        shown = ", ".join(f"first {n}: {c}" for n, c in counts.items())
        print(f"SQL statements per page (in-process): {shown}")
        print(f"page of 100 executed in-process: {result['in_process']:.2f} ms CPU (median of 50)")
        print(f"target: first 100 <= {TARGET_MS:g} ms median at 1M tasks")
    largest = max(results, key=lambda result: result["size"])
    page_of_100, page_cpu = largest["rows"][0]
    record("graphql_page_ms", page_of_100.median)
    record("graphql_page_cpu_ms", page_cpu)
    record("graphql_page_statements", largest["statements"][100])
    print(
        "load average (1, 5, 15 min): "
        f"{' '.join(f'{x:.2f}' for x in load_before)} -> {' '.join(f'{x:.2f}' for x in load_after)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
