"""Profile REST requests in-process with cProfile (the server-side hot spots).

Runs the ASGI app in this process through ``httpx.ASGITransport`` (no uvicorn, no sockets)
against a fresh SQLite project, imports N tasks, then profiles one scenario. Worker-thread
hops (``anyio.to_thread.run_sync`` and the stored operations' pool,
``schema.stored.OperationThreads``) are run inline so that cProfile, which follows one
thread, sees the database and GraphQL work too; the thread hop itself is therefore not
measured. Run from the repository root::

    python bench/profile_rest.py import --tasks 100000
    python bench/profile_rest.py task-get --tasks 100000 --reps 500
    python bench/profile_rest.py list-first|list-last|completion|next-<mode>|health ...
    python bench/profile_rest.py graphql-page --tasks 100000 --reps 200

(``bench/`` is on ``sys.path`` as the script's directory: it reuses rest_workload's data.)

It prints the mean in-process latency of the scenario and the top functions by own time
(``tottime``) and by cumulative time, with file:line.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import math
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
from rest_workload import COMPLETION_BODY, LABEL_CONFIG, make_tasks

from schema.stored import OperationThreads
from server.app import create_app
from server.db import with_connection
from server.settings import Settings

SCENARIOS = (
    "import",
    "health",
    "list-first",
    "list-last",
    "task-get",
    "graphql-page",
    "completion",
    "next-sequential",
    "next-uniform",
    "next-prediction-score-min",
    "next-prediction-score-max",
)


async def _inline(fn: Callable[..., Any], *args: Any, **_kwargs: Any) -> Any:
    return fn(*args)


# bench/graphql_pages.py's page of 100 (the first 200 tasks have a completion each).
GRAPHQL_PAGE = (
    "query Page($n: Int!) { project { tasks(first: $n) {"
    " nodes { id data completions { id result } predictions { score result } } } } }"
)


async def _inline_operation(_threads: Any, fn: Callable[..., Any], *args: Any) -> Any:
    return with_connection(fn, *args)


def run_threads_inline() -> None:
    """Make every ``anyio.to_thread.run_sync`` call, and the stored operations' thread hop
    (:class:`schema.stored.OperationThreads`), run on the calling thread."""
    anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
    OperationThreads.run = _inline_operation  # type: ignore[method-assign,assignment]


JSON = {"Content-Type": "application/json"}


async def check(response: Awaitable[httpx.Response]) -> httpx.Response:
    answer = await response
    if answer.status_code >= 400:
        raise RuntimeError(f"{answer.request.url} -> {answer.status_code}: {answer.text[:300]}")
    return answer


async def prepare(client: httpx.AsyncClient, size: int, prediction_every: int) -> list[int]:
    await check(client.post("/api/project/config", data={"label_config": LABEL_CONFIG}))
    ids: list[int] = []
    rng = random.Random(1)
    for start in range(0, size, 100_000):
        body = make_tasks(start, min(100_000, size - start), prediction_every, rng)
        headers = {"Content-Type": "application/json"}
        answer = await check(client.post("/api/project/import", content=body, headers=headers))
        ids += answer.json()["new_task_ids"]
    return ids


def requests_for(
    scenario: str, client: httpx.AsyncClient, ids: list[int], reps: int
) -> list[Callable[[], Awaitable[httpx.Response]]]:
    rng = random.Random(2)
    last = math.ceil(len(ids) / 10)
    paths = {
        "health": "/api/health",
        "list-first": "/api/tasks?page=1&page_size=10",
        "list-last": f"/api/tasks?page={last}&page_size=10",
    }
    if scenario in paths:
        return [lambda: client.get(paths[scenario])] * reps
    if scenario == "task-get":
        picks = [rng.choice(ids) for _ in range(reps)]
        return [lambda i=i: client.get(f"/api/tasks/{i}") for i in picks]
    if scenario == "graphql-page":
        body = {"query": GRAPHQL_PAGE, "variables": {"n": 100}}
        return [lambda: client.post("/graphql", json=body)] * reps
    if scenario == "completion":
        headers = {"Content-Type": "application/json"}
        return [
            lambda i=i: client.post(
                f"/api/tasks/{i}/completions", content=COMPLETION_BODY, headers=headers
            )
            for i in sorted(ids)[:reps]
        ]
    return [lambda: client.get("/api/project/next")] * reps


async def profile(args: argparse.Namespace, workdir: Path) -> cProfile.Profile:
    settings = Settings.from_env(project_dir=str(workdir / "profile_project"), log_level="WARNING")
    app = create_app(settings)
    profiler = cProfile.Profile()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        base_url = f"http://localhost:{settings.port}"  # a Host the HostCheck lets in
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            if args.scenario == "import":
                await check(client.post("/api/project/config", data={"label_config": LABEL_CONFIG}))
                body = make_tasks(0, args.tasks, args.prediction_every, random.Random(1))
                headers = {"Content-Type": "application/json"}
                started = time.perf_counter()
                profiler.enable()
                await check(client.post("/api/project/import", content=body, headers=headers))
                profiler.disable()
                elapsed = time.perf_counter() - started
                print(f"import of {args.tasks:,} tasks: {args.tasks / elapsed:,.0f} tasks/s")
            else:
                ids = await prepare(client, args.tasks, args.prediction_every)
                if args.scenario == "graphql-page":
                    for task_id in sorted(ids)[:200]:
                        path = f"/api/tasks/{task_id}/completions"
                        await check(client.post(path, content=COMPLETION_BODY, headers=JSON))
                if args.scenario.startswith("next-"):
                    mode = args.scenario.removeprefix("next-")
                    await check(client.patch("/api/project", json={"sampling": mode}))
                calls = requests_for(args.scenario, client, ids, args.reps + 20)
                for call in calls[:20]:
                    await check(call())
                started = time.perf_counter()
                profiler.enable()
                for call in calls[20:]:
                    await check(call())
                profiler.disable()
                elapsed = (time.perf_counter() - started) * 1000 / args.reps
                print(f"{args.scenario}: {elapsed:.3f} ms per request (in-process, profiled)")
    return profiler


def print_top(profiler: cProfile.Profile, key: str, limit: int) -> None:
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats(key).print_stats(limit)
    text = stream.getvalue()
    print(text[text.index("   ncalls") :] if "   ncalls" in text else text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--prediction-every", type=int, default=10, help="every N-th task has a prediction"
    )
    parser.add_argument("--dump", help="also write the raw profile to this file (pstats)")
    args = parser.parse_args(argv)
    run_threads_inline()
    with tempfile.TemporaryDirectory(prefix="labelgraph-profile-") as tmp:
        profiler = asyncio.run(profile(args, Path(tmp)))
    if args.dump:
        profiler.dump_stats(args.dump)
    print("--- by own time (tottime) ---")
    print_top(profiler, "tottime", args.top)
    print("--- by cumulative time ---")
    print_top(profiler, "cumulative", args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
