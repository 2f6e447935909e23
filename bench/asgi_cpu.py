"""Server CPU per request of the hot paths, in-process: the ASGI app called directly.

No sockets, no HTTP client, no uvicorn: each request is a hand-made ASGI scope passed to the
application (as uvicorn would after parsing), and the figure is the process's CPU time
(``time.process_time``, all threads: the worker-thread hop included) per request. That is the
part of a request the server's own code decides (middleware, routing, the stored GraphQL
operation, the database read, JSON), and on a shared machine it moves far less than latency,
so it is the figure to compare in A/B runs of two checkouts::

    python bench/asgi_cpu.py [--tasks 10000] [--reps 3000] [--rounds 5] [--db URL] [--loop asyncio]
        [--only health task-get next-task task-page graphql-page completion-repeat
                completion-first]

``next task`` GETs ``/api/project/next`` (the project's sampling: the next unlabeled task);
``task page`` GETs ``/api/tasks?page=N&page_size=100`` for random pages (every 10th task holds
a prediction; with the rows before it, no task holds a completion yet); ``graphql page`` POSTs
issue 17's typed page of the first 100 tasks to ``/graphql``.
``completion repeat`` POSTs a completion to one of the first 50 tasks (each already labeled
after the first round: the 32-writer benchmark's steady state), ``completion first`` each to a
task without one (moving it from the unlabeled order to the completion order); both with the
body of ``bench/concurrent_writers.py``.

It runs on uvloop, as uvicorn does when it is installed (``--loop asyncio``: the standard
loop), and prints, per path, the median over ``--rounds`` of the CPU microseconds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rest_workload import COMPLETION_BODY, LABEL_CONFIG, make_tasks

from server.app import create_app
from server.settings import Settings

PAGE_SIZE = 100
ROWS = (
    "health",
    "task-get",
    "next-task",
    "task-page",
    "graphql-page",
    "completion-repeat",
    "completion-first",
)


# issue 17's typed page: the first 100 tasks with their completions and predictions
GRAPHQL_PAGE = json.dumps(
    {
        "query": "{ project { tasks(first: 100) { nodes { id data completions { id result }"
        " predictions { score result } } } } }"
    }
).encode()


def page_query(page: int) -> bytes:
    return f"page={page}&page_size={PAGE_SIZE}".encode()


def scope_for(
    method: str, path: str, port: int, query: bytes = b"", body: bytes | None = None
) -> dict[str, Any]:
    headers = [
        (b"host", f"localhost:{port}".encode()),
        (b"user-agent", b"bench"),
        (b"accept", b"*/*"),
        (b"connection", b"keep-alive"),
    ]
    if body is not None:
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
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
        "server": ("127.0.0.1", port),
        "state": {},
        "body": body or b"",  # read by call(), not part of ASGI
    }


async def call(app: Any, scope: dict[str, Any]) -> int:
    status = 0
    body = scope.pop("body", b"")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def measure(args: argparse.Namespace, workdir: Path) -> None:
    overrides: dict[str, Any] = {"log_level": "WARNING"}
    if args.db:
        overrides["database_url"] = args.db
    settings = Settings.from_env(project_dir=str(workdir / "cpu_project"), **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        base_url = f"http://localhost:{settings.port}"
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            if args.db:
                await client.delete("/api/tasks")
            answer = await client.post("/api/project/config", data={"label_config": LABEL_CONFIG})
            assert answer.status_code < 300, answer.text
            body = make_tasks(0, args.tasks, 10, random.Random(1))
            answer = await client.post(
                "/api/project/import", content=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code < 300, answer.text
            ids = answer.json()["new_task_ids"]
        rng = random.Random(2)
        port = settings.port

        def post(task_id: int) -> dict[str, Any]:
            return scope_for(
                "POST", f"/api/tasks/{task_id}/completions", port, b"", COMPLETION_BODY
            )

        pages = max(1, len(ids) // PAGE_SIZE)
        fresh = iter(ids[50:])
        rows = {
            "health": lambda: [scope_for("GET", "/api/health", port)] * args.reps,
            "task-get": lambda: [
                scope_for("GET", f"/api/tasks/{rng.choice(ids)}", port) for _ in range(args.reps)
            ],
            "next-task": lambda: [scope_for("GET", "/api/project/next", port)] * args.reps,
            "task-page": lambda: [
                scope_for("GET", "/api/tasks", port, page_query(rng.randint(1, pages)))
                for _ in range(args.reps)
            ],
            "graphql-page": lambda: (
                [scope_for("POST", "/graphql", port, body=GRAPHQL_PAGE)] * args.reps
            ),
            "completion-repeat": lambda: [post(rng.choice(ids[:50])) for _ in range(args.reps)],
            "completion-first": lambda: [post(next(fresh)) for _ in range(args.reps + 50)],
        }
        for label, make in rows.items():
            if args.only and label not in args.only:
                continue
            figures = []
            for _ in range(args.rounds):
                scopes = make()
                expect = 201 if label.startswith("completion") else 200
                for scope in scopes[:50]:
                    assert await call(app, dict(scope)) == expect
                scopes = scopes[50:] if label == "completion-first" else scopes
                started = time.process_time()
                for scope in scopes:
                    await call(app, dict(scope))
                figures.append((time.process_time() - started) * 1e6 / len(scopes))
            shown = ", ".join(f"{f:.0f}" for f in figures)
            print(f"{label:17} median {statistics.median(figures):6.0f} µs CPU ({shown})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", help="database URL (an existing project is emptied first)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=ROWS,
        help="only these rows",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="labelgraph-cpu-") as tmp:
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(measure(args, Path(tmp)))
        else:
            asyncio.run(measure(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
