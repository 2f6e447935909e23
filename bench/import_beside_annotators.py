"""Annotators at work while a large import runs: do their saves and reads go through?

Starts a fresh ``labelgraph start`` process (as ``rest_workload.py``; ``--db`` for PostgreSQL),
sets a Text + Choices config and imports 100 tasks, then POSTs one JSON body of ``--tasks``
tasks (default 400,000) to ``/api/project/import``. ``--delay`` seconds into it (default 3),
``--writers`` clients (default 30, more than the server's 16 pooled connections) each POST one
completion, and one reader GETs a task every 0.1 s until the import answers. It prints:

* the import's wall time and status,
* the completion POSTs' statuses (201 saved; 503 refused after ``LABELGRAPH_WRITE_WAIT``, set it
  with ``--write-wait``; a 500 is a bug) and their latency (they wait for the import on SQLite,
  which writes one transaction at a time),
* the reads' latency during the import (median, p95, max): a read never waits for a write.

On SQLite, before writers gave their pooled connection back while they queued, 30 writers
held all 16 and a read waited for the whole import. No assertions: figures only. Run from the
repository root::

    python bench/import_beside_annotators.py [--tasks 400000] [--writers 30] [--delay 3]
                                             [--write-wait 60] [--db URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from rest_workload import (
    COMPLETION_BODY,
    Client,
    make_tasks,
    running_server,
    set_label_config,
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=400_000, help="tasks in the large import")
    parser.add_argument("--writers", type=int, default=30, help="completion POSTs meanwhile")
    parser.add_argument("--delay", type=float, default=3.0, help="seconds before they start")
    parser.add_argument("--write-wait", type=float, help="the server's LABELGRAPH_WRITE_WAIT")
    parser.add_argument("--db", help="database URL passed to the server (e.g. postgresql://…)")
    args = parser.parse_args()
    if args.write_wait is not None:
        os.environ["LABELGRAPH_WRITE_WAIT"] = str(args.write_wait)
    body = make_tasks(0, args.tasks, 10, random.Random(2))
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp), args.db) as server:
        setup = Client(server.port)
        set_label_config(setup)
        small = make_tasks(0, 100, 0, random.Random(1))
        answer = json.loads(setup.request("POST", "/api/project/import", small))
        task_ids: list[int] = answer["new_task_ids"]
        importing = threading.Event()
        import_result: list[tuple[float, str]] = []

        def run_import() -> None:
            client = Client(server.port, timeout=600)
            started = time.perf_counter()
            importing.set()
            try:
                client.request("POST", "/api/project/import", body, expect=(201,))
                import_result.append((time.perf_counter() - started, "201"))
            except RuntimeError as exc:
                import_result.append((time.perf_counter() - started, str(exc)[:200]))

        writes: list[tuple[str, float]] = []

        def write(task_id: int) -> None:
            client = Client(server.port, timeout=600)
            path = f"/api/tasks/{task_id}/completions"
            started = time.perf_counter()
            client.connection.request(
                "POST", path, body=COMPLETION_BODY, headers={"Content-Type": "application/json"}
            )
            response = client.connection.getresponse()
            response.read()
            writes.append((str(response.status), time.perf_counter() - started))

        importer = threading.Thread(target=run_import)
        importer.start()
        importing.wait()
        time.sleep(args.delay)
        writers = [
            threading.Thread(target=write, args=(task_ids[i % len(task_ids)],))
            for i in range(args.writers)
        ]
        for writer in writers:
            writer.start()
        reader = Client(server.port, timeout=600)
        reads: list[float] = []
        while importer.is_alive():
            started = time.perf_counter()
            reader.request("GET", f"/api/tasks/{task_ids[-1]}")
            reads.append(time.perf_counter() - started)
            time.sleep(0.1)
        importer.join()
        for writer in writers:
            writer.join()

    seconds, status = import_result[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, db {args.db or 'SQLite'}")
    print(f"import of {args.tasks:,} tasks: {status} in {seconds:.1f} s")
    statuses = Counter(code for code, _ in writes)
    latencies = [latency for _, latency in writes]
    print(
        f"{args.writers} completion POSTs from {args.delay:g} s in: "
        + ", ".join(f"{count} x {code}" for code, count in sorted(statuses.items()))
        + f"; latency median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s"
    )
    if reads:
        print(
            f"reads during the import: {len(reads)}, median {statistics.median(reads) * 1000:.0f}"
            f" ms, p95 {percentile(reads, 0.95) * 1000:.0f} ms, max {max(reads) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
