"""Task deletion and deep pages: the cost of ``DELETE /api/tasks/<id>`` and of page N in every
order, measured on the services in-process (no HTTP), at 100k and 1M tasks.

For each size it builds a fresh project through the bulk import service (chunks of 100,000,
every third task imported with a completion whose ``created_at`` is spread over a few days, so
the completion orders have many labeled tasks and ties), then times:

* ``delete_task`` of random tasks (random positions in id order), each in its own transaction;
* ``create_completion`` on random unlabeled tasks (``--completions``, each in its own
  transaction: the task joins the newest completion-order block);
* ``list_page`` (with the project read, as a request does) of page 1, the middle page, the last
  page and random deep pages of size 10, in each order (``id``, ``-id``, ``completed_at``,
  ``-completed_at``).

It prints median / p95 / max per row in milliseconds against the 5 ms target. On PostgreSQL
the tables are vacuumed and analysed after the build (what autovacuum does on a live server).
No assertions: it only reports figures. Run from the repository root with the project's venv::

    python bench/task_pages.py [--sizes 100000 1000000] [--deletes 50] [--completions 50]
                               [--db URL] [--keep | --project ID]

Without ``--db`` it uses a SQLite file in a temporary folder. With ``--db postgresql://…`` it
creates its own project in that (already migrated or empty) database and deletes it at the end;
``--project ID`` measures an existing project there instead (e.g. the one ``datamanager.py
--reuse`` or ``--keep`` kept), without building one: the ``--deletes`` random tasks are deleted
for good and the ``--completions`` stay. ``--keep`` (with ``--db``) keeps the project it built
and prints its id: build 1M once, then compare two checkouts on it alternately.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from figures import record

from server import db, migrations
from server.models import Project, Task
from server.services import projects
from server.services.imports.json_import import import_tasks
from server.services.tasks.completions import create_completion
from server.services.tasks.tasks import (
    TaskOrder,
    delete_all_tasks,
    delete_task,
    list_page,
)

CHUNK = 100_000
PAGE_SIZE = 10
TARGET_MS = 5.0
SEED = 20240901
LABEL_CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text">'
    '<Choice value="Positive"/><Choice value="Negative"/></Choices></View>'
)


def _items(start: int, count: int, rng: random.Random) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for n in range(start, start + count):
        text = f"task {n}: " + "lorem ipsum " * 8
        if n % 3 == 0:
            at = 1_700_000_000 + rng.randrange(0, 4 * 86_400, 60)
            completion = {"result": [], "created_at": at}
            items.append({"data": {"text": text}, "completions": [completion]})
        else:
            items.append({"text": text})
    return items


def _build(size: int, rng: random.Random) -> int:
    project, _ = projects.ensure_project(f"bench-{uuid.uuid4().hex[:8]}")
    projects.set_label_config(project.id, LABEL_CONFIG)
    started = time.perf_counter()
    for start in range(0, size, CHUNK):
        import_tasks(project.id, _items(start, min(CHUNK, size - start), rng))
    took = time.perf_counter() - started
    print(f"  built {size:,} tasks in {took:.1f} s ({size / took:,.0f} tasks/s)")
    if not db.is_sqlite():
        for table in ("task", "task_rank_block", "completion"):
            if table in db.database.get_tables():
                db.database.execute_sql(f'VACUUM ANALYZE "{table}"')
    return int(project.id)


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    db.with_connection(fn)
    return (time.perf_counter() - started) * 1000


def _row(name: str, samples: list[float]) -> float:
    """Print a row; its p95."""
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    flag = "ok" if p95 <= TARGET_MS else "SLOW"
    print(
        f"  {name:<34} median {statistics.median(samples):8.2f}  p95 {p95:8.2f}"
        f"  max {samples[-1]:8.2f} ms  {flag}"
    )
    return p95


def _deletes(project_id: int, count: int, rng: random.Random) -> None:
    if count <= 0:
        return
    ids = list(Task.select(Task.id).where(Task.project == project_id).scalars())
    victims = rng.sample(ids, min(count, len(ids)))
    p95 = _row(
        f"delete_task x{len(victims)}", [_timed(lambda i=i: delete_task(i)) for i in victims]
    )
    record("delete_p95_ms", p95)  # the last (largest) size's figure is the one kept


def _completions(project_id: int, count: int, rng: random.Random) -> None:
    if count <= 0:
        return
    ids = list(
        Task.select(Task.id)
        .where(Task.project == project_id, Task.is_labeled == False)  # noqa: E712
        .scalars()
    )
    targets = rng.sample(ids, min(count, len(ids)))
    samples = [_timed(lambda i=i: create_completion(i, {"result": []})) for i in targets]
    _row(f"create_completion x{len(targets)}", samples)


def _pages(project_id: int, reps: int, rng: random.Random) -> None:
    total = Project.get_by_id(project_id).task_count
    last = max(1, -(-total // PAGE_SIZE))
    worst = 0.0
    for order in TaskOrder:
        for label, pages in (
            ("page 1", [1] * reps),
            ("middle page", [last // 2] * reps),
            ("last page", [last] * reps),
            ("random deep pages", [rng.randint(last // 2, last) for _ in range(reps)]),
        ):

            def one(page: int, order: TaskOrder = order) -> None:
                list_page(projects.get_project(project_id), page, PAGE_SIZE, order)

            one(pages[0])  # warm-up
            samples = [_timed(lambda p=p: one(p)) for p in pages]
            worst = max(worst, _row(f"order={order.value} {label}", samples))
    record("page_p95_ms", worst)


def run(
    url: str,
    sizes: list[int],
    deletes: int,
    reps: int,
    existing: int | None = None,
    completions: int = 0,
    keep: bool = False,
) -> None:
    db.connect(url)
    db.with_connection(migrations.migrate)
    rng = random.Random(SEED)
    if existing is not None:
        size = db.with_connection(lambda: Project.get_by_id(existing).task_count)
        print(
            f"{size:,} tasks of project {existing} ({'SQLite' if db.is_sqlite() else 'PostgreSQL'})"
        )
        db.with_connection(_deletes, existing, deletes, rng)
        db.with_connection(_completions, existing, completions, rng)
        db.with_connection(_pages, existing, reps, rng)
        return
    for size in sizes:
        print(f"{size:,} tasks ({'SQLite' if db.is_sqlite() else 'PostgreSQL'})")
        project_id = db.with_connection(_build, size, rng)
        db.with_connection(_deletes, project_id, deletes, rng)
        db.with_connection(_completions, project_id, completions, rng)
        if size == max(sizes):
            db.with_connection(_pages, project_id, reps, rng)
        if keep:
            print(f"  kept project {project_id}")
            continue
        db.with_connection(delete_all_tasks, project_id)
        db.with_connection(Project.delete_by_id, project_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--deletes", type=int, default=50)
    parser.add_argument("--completions", type=int, default=50)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--db", help="postgresql://… (default: a temporary SQLite file)")
    parser.add_argument(
        "--project",
        type=int,
        help="with --db: measure this existing project (no build; its deleted tasks are gone)",
    )
    parser.add_argument("--keep", action="store_true", help="with --db: keep the built project")
    args = parser.parse_args()
    if args.db:
        run(args.db, args.sizes, args.deletes, args.reps, args.project, args.completions, args.keep)
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        run(url, args.sizes, args.deletes, args.reps, completions=args.completions)


if __name__ == "__main__":
    main()
