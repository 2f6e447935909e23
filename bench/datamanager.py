"""Data-manager benchmark: filtered first pages, later pages by cursor, full-text search,
filtered counts and a data-key scan at 1M tasks, on the services in-process (no HTTP).

The project: N tasks (default 1,000,000) of ~100 characters of text, 30 % of them labeled
(one completion choosing one of four labels, ``created_at`` spread over 30 days), 20 % with a
scored prediction, the word ``refund`` in ~0.1 % of them, a ``category`` data key (one of 50
values). It times (median of ``--reps`` runs after a warm-up, milliseconds, with the goal):

* the first page of 50 with a filter on labeled state, completion time, score and label;
* a later page (page 200) by cursor in the same listings, and for the id-ordered ones a late
  page (from a cursor at 90 % of the id range);
* full-text search for ``refund`` (first page and count);
* ``totalCount`` of the filtered sets;
* a filter on ``data.category`` (a scan): first page and count;
* every task ordered by a counter (completions, predictions, cancelled completions).

and prints the SQL plan of every statement behind each figure (``EXPLAIN QUERY PLAN`` on
SQLite, ``EXPLAIN (ANALYZE)`` on PostgreSQL). No
assertions: it reports figures. Run from the repository root with the project's venv::

    python bench/datamanager.py [--tasks 1000000] [--reps 7] [--db URL [--reuse]] [--keep PATH]

Without ``--db`` the project is built in a SQLite file (``--keep PATH`` keeps it and reuses
it on the next run). With ``--db postgresql://…`` it builds its own project there, vacuums and
analyses the tables, and deletes the project at the end (``--reuse`` keeps it, and reuses a
kept project of the same size on the next run).
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server import db, migrations
from server.models import Project, Task
from server.services import projects
from server.services.datamanager import listing
from server.services.datamanager.conditions import parse_filter
from server.services.datamanager.listing import TaskSelection
from server.services.datamanager.ordering import Sort, encode_cursor, parse_sort
from server.services.imports.json_import import import_tasks
from server.services.tasks.tasks import delete_all_tasks

CHUNK = 100_000
PAGE = 50
LATER_PAGE = 200
LATE_FRACTION = 0.9  # the "late" page of the id-ordered cases starts there in the id range
SEED = 20261130
LABELS = ["Car", "Bus", "Bike", "Truck"]
T0 = 1_700_000_000
LABEL_CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="vehicle" toName="text">'
    + "".join(f'<Choice value="{label}"/>' for label in LABELS)
    + "</Choices></View>"
)
WORDS = [
    "the",
    "a",
    "delivery",
    "order",
    "package",
    "customer",
    "late",
    "early",
    "support",
    "ticket",
    "invoice",
    "account",
    "password",
    "shipping",
    "address",
    "payment",
    "card",
    "bank",
    "email",
    "phone",
    "product",
    "quality",
    "price",
    "discount",
    "coupon",
    "review",
    "return",
    "exchange",
    "warehouse",
    "courier",
    "tracking",
    "number",
    "status",
]


def _item(n: int, rng: random.Random) -> dict[str, Any]:
    words = [rng.choice(WORDS) for _ in range(16)]
    if n % 1000 == 7:
        words[rng.randrange(len(words))] = "refund"
    data = {"text": " ".join(words)[:100], "category": f"c{rng.randrange(50)}"}
    item: dict[str, Any] = {"data": data}
    if rng.random() < 0.3:
        choice = {"choices": [rng.choice(LABELS)]}
        result = [{"from_name": "vehicle", "to_name": "text", "type": "choices", "value": choice}]
        at = T0 + rng.randrange(30 * 86_400)
        item["completions"] = [{"result": result, "created_at": at}]
    if rng.random() < 0.2:
        item["predictions"] = [
            {"result": [], "score": round(rng.random(), 4), "model_version": "m1"}
        ]
    return item


def build(size: int) -> int:
    rng = random.Random(SEED)
    project, _ = projects.ensure_project(f"dm-bench-{uuid.uuid4().hex[:8]}")
    projects.set_label_config(project.id, LABEL_CONFIG)
    started = time.perf_counter()
    for start in range(0, size, CHUNK):
        count = min(CHUNK, size - start)
        import_tasks(project.id, [_item(n, rng) for n in range(start, start + count)])
    took = time.perf_counter() - started
    print(f"built {size:,} tasks in {took:.1f} s ({size / took:,.0f} tasks/s)")
    if not db.is_sqlite():
        for table in ("task", "completion", "prediction", "task_label"):
            db.database.execute_sql(f'VACUUM ANALYZE "{table}"')
    else:
        db.database.execute_sql("ANALYZE")
    return int(project.id)


def _ms(fn: Callable[[], object], reps: int) -> float:
    db.with_connection(fn)  # warm-up
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        db.with_connection(fn)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


class _Statements(logging.Handler):
    """The statements peewee runs (it logs each as ``(sql, params)`` at DEBUG level)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[tuple[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, tuple) and len(record.msg) == 2:
            self.found.append(record.msg)


def _plans(fn: Callable[[], object]) -> str:
    """The plan of every SELECT that ``fn`` runs: ``EXPLAIN (ANALYZE)`` on PostgreSQL (the
    rows and times of that run), ``EXPLAIN QUERY PLAN`` on SQLite."""
    logger = logging.getLogger("peewee")
    capture = _Statements()
    level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    try:
        db.with_connection(fn)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite() else "EXPLAIN (ANALYZE, COSTS OFF) "

    def explain() -> list[str]:
        out: list[str] = []
        for sql, params in capture.found:
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            rows = db.database.execute_sql(prefix + sql, params).fetchall()
            out.append("      -- " + " ".join(sql.split())[:160])
            out += ["      " + (str(row[-1]) if db.is_sqlite() else str(row[0])) for row in rows]
        return out

    return "\n".join(db.with_connection(explain))


def _id_at(project_id: int, fraction: float) -> int:
    """The task id at ``fraction`` of the project's id range."""
    ids = Task.select(peewee.fn.MIN(Task.id), peewee.fn.MAX(Task.id))
    low, high = ids.where(Task.project == project_id).scalar(as_tuple=True)
    return int(low + (high - low) * fraction)


def _cursor_after(project: Project, query: TaskSelection, sort: Sort, pages: int) -> str | None:
    cursor = None
    for _ in range(pages):
        page = listing.list_slice(project, query, sort, PAGE, cursor, 1000)
        if not page.has_next_page:
            break
        cursor = page.cursors[-1]
    return cursor


CASES: list[tuple[str, dict[str, Any] | None, str | None, str]] = [
    ("unlabeled", {"field": "is_labeled", "operator": "equal", "value": False}, None, "id"),
    ("labeled", {"field": "is_labeled", "operator": "equal", "value": True}, None, "id"),
    (
        "completed in the last 3 days, newest first",
        {"field": "completed_at", "operator": "greater", "value": T0 + 27 * 86_400},
        None,
        "-completed_at",
    ),
    (
        "score < 0.3, lowest first",
        {"field": "predictions_score", "operator": "less", "value": 0.3},
        None,
        "predictions_score",
    ),
    ("has label Car", {"field": "labels", "operator": "equal", "value": "Car"}, None, "id"),
    ("search 'refund'", None, "refund", "id"),
    (
        "data.category = c7 (scan)",
        {"field": "data.category", "operator": "equal", "value": "c7", "type": "String"},
        None,
        "id",
    ),
    ("all, by number of completions", None, None, "total_completions"),
    ("all, by number of completions, most first", None, None, "-total_completions"),
    ("all, by number of predictions", None, None, "total_predictions"),
    ("all, by number of predictions, most first", None, None, "-total_predictions"),
    ("all, by cancelled completions, most first", None, None, "-cancelled_completions"),
]


def measure(project_id: int, reps: int) -> None:
    project = db.with_connection(projects.get_project, project_id)
    print(
        f"{'case':<46} {'page 1':>8} {'page 200':>9} {'late':>8} {'count':>8}"
        "  (ms; goals 20/20/20/100)"
    )
    plans = []
    late_id = db.with_connection(_id_at, project_id, LATE_FRACTION)
    for name, spec, search, order in CASES:
        query = TaskSelection(filter=parse_filter(spec), search=search)
        sort = parse_sort(order)

        def first(query: TaskSelection = query, sort: Sort = sort) -> object:
            return listing.list_slice(project, query, sort, PAGE, None, 1000)

        cursor = db.with_connection(_cursor_after, project, query, sort, LATER_PAGE - 1)

        def later(
            query: TaskSelection = query, sort: Sort = sort, cursor: str | None = cursor
        ) -> object:
            return listing.list_slice(project, query, sort, PAGE, cursor, 1000)

        def count(query: TaskSelection = query) -> int:
            return listing.count(project, query)

        late_figure = "-"
        if order == "id":  # a cursor deep into the id order, without walking to it
            late_cursor = encode_cursor(sort, 0, None, late_id)

            def late(
                query: TaskSelection = query, sort: Sort = sort, cursor: str = late_cursor
            ) -> object:
                return listing.list_slice(project, query, sort, PAGE, cursor, 1000)

            late_figure = f"{_ms(late, reps):.1f}"
        total = db.with_connection(count)
        print(
            f"{name:<46} {_ms(first, reps):8.1f} {_ms(later, reps):9.1f} {late_figure:>8} "
            f"{_ms(count, max(1, reps // 2)):8.1f}  ({total:,} tasks)"
        )
        plans.append((f"{name}: page 1", _plans(first)))
        plans.append((f"{name}: page {LATER_PAGE}", _plans(later)))
        if order == "id":
            plans.append((f"{name}: late page", _plans(late)))
        plans.append((f"{name}: count", _plans(count)))
    print("\nplans (the statements each figure runs):")
    for name, plan in plans:
        print(f"  {name}\n{plan}")


def run(url: str, size: int, reps: int, reuse: bool) -> None:
    db.connect(url)
    db.with_connection(migrations.migrate)
    kind = "SQLite" if db.is_sqlite() else "PostgreSQL"
    existing = db.with_connection(
        lambda: Project.select().where(Project.name.startswith("dm-bench-")).first()
    )
    if reuse and existing is not None and existing.task_count == size:
        project_id = existing.id
        print(f"reusing {size:,} tasks ({kind})")
    else:
        print(f"{size:,} tasks ({kind})")
        project_id = db.with_connection(build, size)
    measure(project_id, reps)
    if not reuse:
        db.with_connection(delete_all_tasks, project_id)
        db.with_connection(Project.delete_by_id, project_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--db", help="postgresql://… (default: a SQLite file)")
    parser.add_argument("--keep", help="SQLite file to build once and reuse")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --db: keep the project at the end and reuse one of the same size if present",
    )
    args = parser.parse_args()
    if args.db:
        run(args.db, args.tasks, args.reps, reuse=args.reuse)
    elif args.keep:
        run(f"sqlite:///{Path(args.keep).resolve()}", args.tasks, args.reps, reuse=True)
    else:
        with tempfile.TemporaryDirectory() as folder:
            run(f"sqlite:///{folder}/bench.db", args.tasks, args.reps, reuse=False)


if __name__ == "__main__":
    main()
