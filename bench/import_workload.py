"""Import benchmark: tasks/s and peak server memory of ``POST /api/project/import``.

Each workload starts its own fresh server process (``labelgraph start <tmp>/bench_project
--init``, as ``rest_workload.py`` does), so the server's peak RSS (``VmHWM`` from
``/proc/<pid>/status``) belongs to that workload alone:

* ``json-body``: one JSON body of N tasks (default 100,000), about 100 characters of text each,
  every 10th with a scored prediction (the body ``rest_workload.py`` sends);
* ``json-completions``: one JSON body of N tasks (``--body-tasks``) that each carry one
  completion (a choice, ``lead_time`` and ``created_at``): the bulk completion insert and the
  task counters computed from it;
* ``delete-all``: ``DELETE /api/tasks`` of N tasks (``--body-tasks``) that each carry one
  completion, imported as ``json-completions`` after a prelude that leaves the connection
  with stale plans for the foreign keys' cascades (10 tasks with a completion imported, on
  PostgreSQL ``ANALYZE`` of the tables then, as autovacuum does on a small quiet database, 8
  single deletes): the sequence that once made this request O(N²) on PostgreSQL;
* ``json-file``: a JSON file of N tasks (default 1,000,000, about 100 MB) uploaded as
  ``multipart/form-data`` (field ``FileUpload``), streamed from disk by the client;
* ``csv-file``: a CSV file of N rows (default 1,000,000; columns ``text,score``) uploaded the
  same way.

It prints, per workload, the wall time of the request, tasks/s, the server's own ``duration``,
the CPU time of the server process during the request and (``--db``, a PostgreSQL server on
this machine) that of the database's backends (``/proc``: steadier than wall time on a busy
machine, and the import's database share), the server's peak RSS and the database size. No
assertions: it only reports figures. Run from the repository root with the project's venv::

    python bench/import_workload.py [--body-tasks 100000] [--file-tasks 1000000] [--db URL]
                                    [--only json-body json-completions delete-all json-file
                                            csv-file]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import record
from rest_workload import (  # a sibling script
    CHOICE_RESULT,
    HOST,
    IMPORT_TIMEOUT,
    SEED,
    Client,
    make_tasks,
    reset_project,
    running_server,
    set_label_config,
    task_text,
    tree_cpu_seconds,
)

WORKLOADS = ("json-body", "json-completions", "delete-all", "json-file", "csv-file")
STALE_TASKS = 10  # the delete-all prelude: tasks imported, then all but two deleted one by one
FILE_CHUNK = 1024 * 1024
BODY_TARGET = 100_000.0  # tasks/s for the JSON body
RSS_TARGET_KIB = 1024 * 1024  # 1 GiB for the 1M-task file


@dataclass
class Figures:
    workload: str
    tasks: int
    payload_bytes: int
    wall_seconds: float
    server_seconds: float
    peak_rss_kib: int | None
    db_bytes: int | None
    server_cpu: float | None = None  # CPU s of the server process during the request
    db_cpu: float | None = None  # CPU s of the database's backends during the request

    @property
    def rate(self) -> float:
        return self.tasks / self.wall_seconds


def _process_cpu(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BackendCpu:
    """CPU time of a PostgreSQL database's backends (those on this machine, read in ``/proc``;
    None if the server is elsewhere): the database's share of a request."""

    def __init__(self, db_url: str | None) -> None:
        self.db_url = db_url
        self.start: dict[int, float] = {}

    def _pids(self) -> list[int]:
        import psycopg2

        connection = psycopg2.connect(self.db_url)
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                return [int(row[0]) for row in cursor.fetchall()]
        finally:
            connection.close()

    def _times(self) -> dict[int, float]:
        times = {pid: _process_cpu(pid) for pid in self._pids()}
        return {pid: cpu for pid, cpu in times.items() if cpu is not None}

    def begin(self) -> None:
        if self.db_url:
            self.start = self._times()

    def seconds(self) -> float | None:
        if not self.db_url:
            return None
        now = self._times()
        if not now:
            return None
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in now.items())


def analyze_children(db_url: str) -> None:
    """``ANALYZE`` the tables referencing ``task``, as autovacuum would (PostgreSQL)."""
    import psycopg2

    connection = psycopg2.connect(db_url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            for table in ("task", "completion", "prediction", "task_label", "storage_key"):
                cursor.execute(f'ANALYZE "{table}"')
    finally:
        connection.close()


def delete_all(port: int, body: bytes, db_url: str | None) -> tuple[float, float, int]:
    """The delete-all workload: (import wall s, DELETE /api/tasks wall s, tasks deleted)."""
    client = Client(port, timeout=IMPORT_TIMEOUT)
    try:
        small = make_completed_tasks(STALE_TASKS, random.Random(SEED))
        client.request("POST", "/api/project/import", small, expect=(201,))
        page = client.json("GET", f"/api/tasks?page=1&page_size={STALE_TASKS}")
        ids = [task["id"] for task in (page if isinstance(page, list) else page["tasks"])]
        if db_url:
            analyze_children(db_url)
        for task_id in ids[:-2]:
            client.request("DELETE", f"/api/tasks/{task_id}")
        started = time.perf_counter()
        client.request("POST", "/api/project/import", body, expect=(201,))
        imported = time.perf_counter() - started
        count = int(client.json("GET", "/api/project")["task_count"])
        print(f"delete-all: {count:,} tasks imported in {imported:.2f} s; deleting …", flush=True)
        started = time.perf_counter()
        client.request("DELETE", "/api/tasks")
        deleted = time.perf_counter() - started
        if client.json("GET", "/api/project")["task_count"] != 0:
            raise RuntimeError("delete-all: tasks left after DELETE /api/tasks")
    finally:
        client.close()
    return imported, deleted, count


def make_completed_tasks(count: int, rng: random.Random) -> bytes:
    """``count`` tasks as a JSON body, each with one completion."""
    items = [
        {
            "data": {"text": task_text(rng, index)},
            "completions": [
                {"result": CHOICE_RESULT, "lead_time": 1.5, "created_at": 1_700_000_000 + index}
            ],
        }
        for index in range(count)
    ]
    return json.dumps(items, separators=(",", ":")).encode()


def write_json_file(path: Path, count: int, rng: random.Random) -> None:
    """A JSON array of ``count`` bare ``{"text": …}`` tasks, written in pieces."""
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for index in range(count):
            if index:
                out.write(",")
            out.write(json.dumps({"text": task_text(rng, index)}, separators=(",", ":")))
        out.write("]")


def write_csv_file(path: Path, count: int, rng: random.Random) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("text,score\n")
        for index in range(count):
            out.write(f'"{task_text(rng, index)}",{rng.random():.4f}\n')


def db_size(project_dir: Path) -> int | None:
    files = [project_dir / "labelgraph.db", project_dir / "labelgraph.db-wal"]
    sizes = [f.stat().st_size for f in files if f.exists()]
    return sum(sizes) if sizes else None


def upload_file(port: int, path: Path, content_type: str) -> tuple[float, dict[str, Any]]:
    """POST ``path`` as ``multipart/form-data``, streamed from disk; (wall seconds, report)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="FileUpload"; '
        f'filename="{path.name}"\r\nContent-Type: {content_type}\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = len(head) + path.stat().st_size + len(tail)
    connection = http.client.HTTPConnection(HOST, port, timeout=IMPORT_TIMEOUT)
    try:
        started = time.perf_counter()
        connection.putrequest("POST", "/api/project/import")
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        connection.send(head)
        with path.open("rb") as source:
            while chunk := source.read(FILE_CHUNK):
                connection.send(chunk)
        connection.send(tail)
        response = connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    if response.status != 201:
        raise RuntimeError(f"upload of {path.name} -> {response.status}: {payload[:300]!r}")
    return elapsed, json.loads(payload)


def post_body(port: int, body: bytes) -> tuple[float, dict[str, Any]]:
    client = Client(port, timeout=IMPORT_TIMEOUT)
    try:
        started = time.perf_counter()
        payload = client.request("POST", "/api/project/import", body, expect=(201,))
        elapsed = time.perf_counter() - started
    finally:
        client.close()
    return elapsed, json.loads(payload)


@dataclass
class Sources:
    body: bytes | None
    completed_body: bytes | None
    json_file: Path | None
    csv_file: Path | None


def prepare_sources(args: argparse.Namespace, workdir: Path) -> Sources:
    rng = random.Random(SEED)
    body = completed_body = json_file = csv_file = None
    if "json-body" in args.only:
        body = make_tasks(0, args.body_tasks, 10, rng)
    if "json-completions" in args.only or "delete-all" in args.only:
        completed_body = make_completed_tasks(args.body_tasks, rng)
    if "json-file" in args.only:
        json_file = workdir / "tasks.json"
        print(f"writing {args.file_tasks:,} tasks to {json_file.name} …", flush=True)
        write_json_file(json_file, args.file_tasks, rng)
    if "csv-file" in args.only:
        csv_file = workdir / "tasks.csv"
        print(f"writing {args.file_tasks:,} rows to {csv_file.name} …", flush=True)
        write_csv_file(csv_file, args.file_tasks, rng)
    return Sources(body, completed_body, json_file, csv_file)


def run_workload(name: str, sources: Sources, args: argparse.Namespace, workdir: Path) -> Figures:
    run_dir = workdir / name
    run_dir.mkdir()
    with running_server(run_dir, args.db) as server:
        setup = Client(server.port)
        try:
            reset_project(setup)
            set_label_config(setup)
        finally:
            setup.close()
        print(f"{name}: importing …", flush=True)
        backends = BackendCpu(args.db)
        backends.begin()
        cpu_before = tree_cpu_seconds(server.process.pid)
        if name == "json-body":
            assert sources.body is not None
            payload_bytes = len(sources.body)
            wall, report = post_body(server.port, sources.body)
        elif name == "delete-all":
            assert sources.completed_body is not None
            _, wall, count = delete_all(server.port, sources.completed_body, args.db)
            return Figures(name, count, 0, wall, wall, server.peak_rss_kib(), None)
        elif name == "json-completions":
            assert sources.completed_body is not None
            payload_bytes = len(sources.completed_body)
            wall, report = post_body(server.port, sources.completed_body)
        elif name == "json-file":
            assert sources.json_file is not None
            payload_bytes = sources.json_file.stat().st_size
            wall, report = upload_file(server.port, sources.json_file, "application/json")
        else:
            assert sources.csv_file is not None
            payload_bytes = sources.csv_file.stat().st_size
            wall, report = upload_file(server.port, sources.csv_file, "text/csv")
        server_cpu = tree_cpu_seconds(server.process.pid) - cpu_before
        db_cpu = backends.seconds()
        check = Client(server.port)
        try:
            stored = check.json("GET", "/api/project")["task_count"]
        finally:
            check.close()
        if stored != report["task_count"]:
            raise RuntimeError(f"{name}: report says {report['task_count']}, project {stored}")
        return Figures(
            workload=name,
            tasks=int(report["task_count"]),
            payload_bytes=payload_bytes,
            wall_seconds=wall,
            server_seconds=float(report["duration"]),
            peak_rss_kib=server.peak_rss_kib(),
            db_bytes=None if args.db else db_size(run_dir / "bench_project"),
            server_cpu=server_cpu,
            db_cpu=db_cpu,
        )


def print_figures(results: list[Figures]) -> None:
    print()
    header = (
        f"{'workload':<16} {'tasks':>10} {'payload':>10} {'wall s':>8} {'tasks/s':>10} "
        f"{'server s':>9} {'CPU s':>6} {'db CPU':>6} {'peak RSS':>10} {'db':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        rss = f"{r.peak_rss_kib / 1024:,.0f} MiB" if r.peak_rss_kib else "n/a"
        db = f"{r.db_bytes / 1e6:,.0f} MB" if r.db_bytes else "n/a"
        cpu = "n/a" if r.server_cpu is None else f"{r.server_cpu:.2f}"
        db_cpu = "n/a" if r.db_cpu is None else f"{r.db_cpu:.2f}"
        print(
            f"{r.workload:<16} {r.tasks:>10,} {r.payload_bytes / 1e6:>8,.1f}MB "
            f"{r.wall_seconds:>8.2f} {r.rate:>10,.0f} {r.server_seconds:>9.2f} {cpu:>6} "
            f"{db_cpu:>6} {rss:>10} {db:>10}"
        )
    print()
    for r in results:
        if r.workload == "delete-all":
            record("delete_all_seconds", r.wall_seconds)
            print(f"delete-all: DELETE /api/tasks of {r.tasks:,} tasks in {r.wall_seconds:.2f} s")
        elif r.workload in ("json-body", "json-completions"):
            record(
                "import_plain_rate" if r.workload == "json-body" else "import_completions_rate",
                r.rate,
            )
            verdict = "meets" if r.rate >= BODY_TARGET else "MISSES"
            print(f"{r.workload}: {r.rate:,.0f} tasks/s {verdict} the target of {BODY_TARGET:,.0f}")
        elif r.peak_rss_kib is not None:
            verdict = "under" if r.peak_rss_kib < RSS_TARGET_KIB else "OVER"
            print(f"{r.workload}: peak RSS {r.peak_rss_kib / 1024:,.0f} MiB, {verdict} 1 GiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body-tasks", type=int, default=100_000)
    parser.add_argument("--file-tasks", type=int, default=1_000_000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file per workload)")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="labelgraph-import-bench-") as tmp:
        workdir = Path(tmp)
        sources = prepare_sources(args, workdir)
        results = []
        for name in WORKLOADS:
            if name in args.only:
                results.append(run_workload(name, sources, args, workdir))
        print_figures(results)
    print(f"(machine: {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
