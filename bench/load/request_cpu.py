"""Server CPU per request of each request type of the mixed load, in-process.

The ASGI app is called directly (no sockets, no client), on a project seeded by ``run.py``
(its cached SQLite project, copied first) or on a PostgreSQL database (``--db``; run
``run.py`` first so that it holds the seeded tasks, and note that the completions and imports
made here stay in it until ``run.py`` restores it). Prints, per request type, the median over
``--rounds`` of the CPU microseconds per request (``time.process_time``: all threads) and, on
PostgreSQL, of its backends' (``/proc``, a local server): the figures that bound the mixed
load's requests/s on this 2-core machine, and how much of the server's went to the cyclic
garbage collector (the CPU time of its collections, per request)::

    python bench/load/request_cpu.py [--tasks 1000000] [--reps 300] [--db URL] [--statements]

``--statements`` (PostgreSQL with the ``pg_stat_statements`` extension in the database, and
``pg_stat_statements.track_planning`` on for planning times) also prints, per request type, each
statement's calls per request and its mean planning and execution time (the extension's
counters are reset before each request type's last round).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from server.app import create_app
from server.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rest_workload import tree_cpu_seconds


def database_cpu(url: str | None) -> float:
    """CPU seconds so far of the PostgreSQL backends connected to ``url``'s database (a local
    server), or 0 without ``url``."""
    if not url:
        return 0.0
    from urllib.parse import urlsplit, urlunsplit

    import psycopg2

    parts = urlsplit(url)
    connection = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (parts.path.lstrip("/"),)
            )
            pids = [int(row[0]) for row in cursor.fetchall()]
    finally:
        connection.close()
    return sum(tree_cpu_seconds(pid) for pid in pids)


def statements_reset(url: str) -> None:
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_statements_reset()")
        connection.commit()
    finally:
        connection.close()


def statements_report(url: str, requests: int) -> None:
    """Print the statements run since :func:`statements_reset`: calls per request, mean planning
    and execution µs (``pg_stat_statements``), and the µs per request they add up to."""
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT calls, plans, total_plan_time, total_exec_time, query"
                " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
                " WHERE datname = current_database()) AND query NOT LIKE '%pg_stat_statements%'"
                " ORDER BY total_plan_time + total_exec_time DESC"
            )
            rows = cursor.fetchall()
    finally:
        connection.close()
    plan_sum = sum(r[2] for r in rows) * 1000 / requests
    exec_sum = sum(r[3] for r in rows) * 1000 / requests
    print(
        f"    per request: {sum(r[0] for r in rows) / requests:.2f} statements, planning"
        f" {plan_sum:.0f} µs, execution {exec_sum:.0f} µs"
    )
    for calls, plans, plan_ms, exec_ms, query in rows[:8]:
        text = " ".join(query.split())
        print(
            f"    {calls / requests:5.2f}/req plan {plan_ms * 1000 / max(plans, 1):6.1f} µs"
            f" ({plans} plans) exec {exec_ms * 1000 / max(calls, 1):6.1f} µs  {text[:110]}"
        )


def scope(method: str, path: str, query: bytes = b"", json_body: bool = False) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8080"), (b"accept", b"*/*")]
    if json_body:
        headers.append((b"content-type", b"application/json"))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


class CollectorTime:
    """CPU seconds spent in garbage collections (of the thread that ran each one)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._started


async def call(app: Any, request: dict[str, Any], body: bytes = b"") -> tuple[int, bytes]:
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(dict(request), receive, send)
    return status, b"".join(chunks)


async def measure(args: argparse.Namespace, project: Path) -> None:
    overrides: dict[str, Any] = {"log_level": "WARNING"}
    if args.db:
        overrides["database_url"] = args.db
    settings = Settings.from_env(project_dir=str(project), **overrides)
    app = create_app(settings)
    rng = random.Random(3)
    pages = max(1, args.tasks // 10)

    async def next_task() -> int:
        status, _ = await call(app, scope("GET", "/api/project/next"))
        return status

    async def completion() -> int:
        status, raw = await call(app, scope("GET", "/api/project/next"))
        task_id = json.loads(raw)["id"]
        body = json.dumps({"result": [], "lead_time": 1.5}).encode()
        status, _ = await call(
            app, scope("POST", f"/api/tasks/{task_id}/completions", json_body=True), body
        )
        return status

    async def page() -> int:
        query = f"page={rng.randint(1, pages)}&page_size=10".encode()
        status, _ = await call(app, scope("GET", "/api/tasks", query))
        return status

    async def one_task() -> int:
        status, _ = await call(app, scope("GET", f"/api/tasks/{rng.randint(1, pages * 10)}"))
        return status

    async def import_100() -> int:
        body = json.dumps([{"text": f"imported {i}"} for i in range(100)]).encode()
        status, _ = await call(app, scope("POST", "/api/project/import", json_body=True), body)
        return status

    cases: list[tuple[str, Callable[[], Any], int]] = [
        ("next", next_task, args.reps),
        ("next + completion", completion, args.reps),
        ("page", page, args.reps),
        ("task", one_task, args.reps),
        ("import 100", import_100, max(5, args.reps // 20)),
    ]
    collector = CollectorTime()
    gc.callbacks.append(collector)
    async with app.router.lifespan_context(app):
        status, raw = await call(
            app,
            scope("PATCH", "/api/project", json_body=True),
            json.dumps({"sampling": args.sampling}).encode(),
        )
        assert status in (200, 201), (status, raw)
        for label, case, reps in cases:
            figures, database, collected = [], [], []
            for round_ in range(args.rounds):
                for _ in range(5):
                    assert await case() in (200, 201), label
                if args.statements and round_ == args.rounds - 1:
                    statements_reset(args.db)
                database_before = database_cpu(args.db)
                collected_before = collector.seconds
                started = time.process_time()
                for _ in range(reps):
                    await case()
                figures.append((time.process_time() - started) * 1e6 / reps)
                collected.append((collector.seconds - collected_before) * 1e6 / reps)
                database.append((database_cpu(args.db) - database_before) * 1e6 / reps)
            shown = ", ".join(f"{f:.0f}" for f in figures)
            line = f"{label:18} median {statistics.median(figures):7.0f} µs CPU ({shown})"
            line += f", GC {statistics.median(collected):4.1f} µs"
            if args.db:
                line += f", PostgreSQL {statistics.median(database):6.0f} µs"
            print(line)
            if args.statements:
                statements_report(args.db, reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sampling", default="uniform")
    parser.add_argument("--db", help="PostgreSQL URL holding run.py's seeded project")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="per request type, each statement's calls, planning and execution (PostgreSQL)",
    )
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "labelgraph-load-cache"),
        help="run.py's cache of seeded SQLite projects",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labelgraph-cpu-") as tmp:
        project = Path(tmp) / "bench"
        if not args.db:
            seeded = Path(args.cache) / f"sqlite-{args.tasks}" / "host-0" / "bench"
            if not seeded.exists():
                sys.exit(f"no seeded project at {seeded}: run bench/load/run.py first")
            shutil.copytree(seeded, project)
        import uvloop

        uvloop.run(measure(args, project))


if __name__ == "__main__":
    main()
