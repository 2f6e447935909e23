"""Every throughput figure of issue 17 in one run, beside the previous figures and the goals.

Runs the benchmark scripts one after another (each starts its own server or project, so they do
not disturb each other), collects the figures they :func:`figures.record`, and prints one
table per database: figure, previous, now, goal, verdict. Run from the repository root::

    python bench/throughput.py [--db postgresql://…] [--small 100000] [--large 1000000]
                               [--only hot_paths writers …] [--save]

``--db`` picks the database (default: SQLite files the scripts make themselves); the previous
figures come from ``bench/figures/<sqlite|postgresql>.json`` and ``--save`` replaces them with
this run's (with the date, commit, load average and the host's speed for a fixed Python loop).
A full run at 1M takes ~15-30 minutes on a 2-core machine; ``--small 10000 --large 50000``
checks the wiring in a couple of minutes. Client and server share the CPUs, so the load average
before and after is printed too: repeat a run when the machine is busy; and the time of a fixed
Python loop, since hosts of the same kind differ in speed: compare figures through it. Nothing
is asserted; a missed goal is only reported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import dataclass
from pathlib import Path

from figures import FIGURES_FILE_VARIABLE

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    goal: float | None  # None: reported, no goal
    higher_is_better: bool = False
    postgres_goal: float | None = None  # when PostgreSQL's goal differs

    def goal_for(self, postgres: bool) -> float | None:
        return self.postgres_goal if postgres and self.postgres_goal is not None else self.goal


FIGURES = (
    Figure("health_ms", "GET /api/health, median (small)", "ms", 0.7),
    Figure("health_cpu_ms", "  its server CPU per request", "ms", None),
    Figure("task_get_ms", "GET /api/tasks/<id>, median (small)", "ms", 1.0),
    Figure("task_get_cpu_ms", "  its server CPU per request", "ms", None),
    Figure("completion_post_ms", "POST completion, median (small)", "ms", 1.3),
    Figure("completion_post_cpu_ms", "  its server CPU per request", "ms", None),
    Figure("task_get_rate", "task GETs/s, 16 threads (small)", "/s", 1000, higher_is_better=True),
    Figure("writers_rate", "completion POSTs/s, 32 writers", "/s", 1000, higher_is_better=True),
    Figure("writers_p99_ms", "completion POST p99, 32 writers", "ms", 50),
    Figure("writers_lost", "writes lost or duplicated, 32 writers", "", 0),
    Figure("writers_errors", "failed POSTs, 32 writers", "", 0),
    Figure("writers_2w_rate", "  the same, 2 workers: POSTs/s", "/s", 1000, higher_is_better=True),
    Figure("writers_2w_p99_ms", "  2 workers: p99", "ms", 50),
    Figure("writers_2w_lost", "  2 workers: lost or duplicated", "", 0),
    Figure("writers_2w_errors", "  2 workers: failed POSTs", "", 0),
    Figure("delete_p95_ms", "DELETE one task, p95 (large)", "ms", 5),
    Figure("page_p95_ms", "task page, worst p95 over orders and depths (large)", "ms", 5),
    Figure("export_json_s", "export JSON (large)", "s", 8),
    Figure("export_csv_s", "export CSV (large)", "s", 8),
    Figure("export_coco_s", "export COCO (large)", "s", 15),
    Figure("export_yolo_s", "export YOLO (large)", "s", 15),
    Figure("export_rss_ratio", "export peak RSS, large / small", "x", 1.2),
    Figure(
        "import_completions_rate",
        "import with completions (small, one POST)",
        "tasks/s",
        100_000,
        higher_is_better=True,
        postgres_goal=80_000,
    ),
    Figure("import_plain_rate", "import, plain tasks (small, one POST)", "tasks/s", None, True),
    Figure("delete_all_seconds", "DELETE /api/tasks of those with completions (small)", "s", None),
    Figure("graphql_page_ms", "GraphQL page of 100 with nested lists (large)", "ms", 8),
    Figure("graphql_page_cpu_ms", "  its server CPU per request", "ms", None),
    Figure("graphql_page_statements", "  its SQL statements", "", None),
)


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    arguments: tuple[str, ...]


def steps(small: int, large: int) -> list[Step]:
    return [
        Step("hot_paths", "hot_paths.py", ("--tasks", str(small))),
        Step("writers", "concurrent_writers.py", ()),
        Step("writers_2w", "concurrent_writers.py", ("--workers", "2")),
        Step("task_pages", "task_pages.py", ("--sizes", str(large))),
        Step(
            "exports",
            "export_workload.py",
            ("--tasks", str(small), str(large), "--formats", "JSON", "CSV", "COCO", "YOLO"),
        ),
        Step(
            "imports",
            "import_workload.py",
            ("--body-tasks", str(small), "--only", "json-body", "json-completions", "delete-all"),
        ),
        Step("graphql_page", "graphql_pages.py", ("--sizes", str(large))),
    ]


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def python_loop_ms() -> float:
    """Milliseconds of one fixed pure-Python loop (median of 7): the interpreter's speed on
    this host right now. Machines of the same kind differ by up to ~2x, and a shared host by
    ±20 % from one minute to the next, so runs are compared through it."""
    return statistics.median(timeit.repeat("sum(range(10**6))", number=5, repeat=7)) / 5 * 1000


def run_step(step: Step, database: str | None, figures_file: Path) -> tuple[bool, float]:
    command = [sys.executable, str(BENCH / step.script), *step.arguments]
    if database:
        command += ["--db", database]
    print(f"\n### {step.name}: {' '.join(command[1:])}  (load {load_average()})", flush=True)
    environment = dict(os.environ, **{FIGURES_FILE_VARIABLE: str(figures_file)})
    started = time.monotonic()
    finished = subprocess.run(command, cwd=REPO_ROOT, env=environment, check=False)
    seconds = time.monotonic() - started
    if finished.returncode != 0:
        print(f"### {step.name} FAILED (exit {finished.returncode}) after {seconds:.0f} s")
    return finished.returncode == 0, seconds


def read_figures(figures_file: Path) -> dict[str, float]:
    collected: dict[str, float] = {}
    if figures_file.exists():
        for line in figures_file.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            collected[entry["key"]] = entry["value"]
    return collected


def previous_file(postgres: bool) -> Path:
    return BENCH / "figures" / ("postgresql.json" if postgres else "sqlite.json")


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    else:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".strip()


def verdict(figure: Figure, value: float | None, postgres: bool) -> str:
    goal = figure.goal_for(postgres)
    if value is None:
        return "not measured"
    if goal is None:
        return ""
    met = value >= goal if figure.higher_is_better else value <= goal
    return "met" if met else "MISSED"


def print_table(now: dict[str, float], previous: dict[str, object], postgres: bool) -> None:
    before = previous.get("figures", {})
    assert isinstance(before, dict)
    print(f"\n=== throughput, {'PostgreSQL' if postgres else 'SQLite'} ===")
    print(f"previous: {previous.get('source', 'none')}")
    header = f"{'figure':<48} {'previous':>14} {'now':>14} {'goal':>14}  verdict"
    print(header)
    print("-" * len(header))
    for figure in FIGURES:
        goal = figure.goal_for(postgres)
        sign = ">=" if figure.higher_is_better else "<="
        goal_text = "" if goal is None else f"{sign} {format_value(goal, figure.unit)}"
        print(
            f"{figure.label:<48} {format_value(before.get(figure.key), figure.unit):>14} "
            f"{format_value(now.get(figure.key), figure.unit):>14} {goal_text:>14}  "
            f"{verdict(figure, now.get(figure.key), postgres)}"
        )


def commit() -> str:
    answer = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return answer.stdout.strip() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="postgresql://… (default: SQLite)")
    parser.add_argument("--small", type=int, default=100_000, help="tasks for per-request figures")
    parser.add_argument("--large", type=int, default=1_000_000, help="tasks for scale figures")
    parser.add_argument("--only", nargs="+", help="step names (default: all)")
    parser.add_argument("--save", action="store_true", help="keep this run as the previous one")
    arguments = parser.parse_args()
    postgres = bool(arguments.db and arguments.db.startswith("postgres"))
    chosen = steps(arguments.small, arguments.large)
    if arguments.only:
        unknown = set(arguments.only) - {step.name for step in chosen}
        if unknown:
            parser.error(f"unknown steps: {', '.join(sorted(unknown))}")
        chosen = [step for step in chosen if step.name in arguments.only]
    load_before = load_average()
    speed_before = python_loop_ms()
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="labelgraph-throughput-") as scratch:
        figures_file = Path(scratch) / "figures.jsonl"
        for step in chosen:
            succeeded, _ = run_step(step, arguments.db, figures_file)
            if not succeeded:
                failed.append(step.name)
        now = read_figures(figures_file)
    path = previous_file(postgres)
    previous = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    print_table(now, previous, postgres)
    speed = (speed_before + python_loop_ms()) / 2
    previous_speed = previous.get("python_loop_ms") if isinstance(previous, dict) else None
    print(
        f"\nload average: {load_before} -> {load_average()}; sizes {arguments.small:,} / "
        f"{arguments.large:,}; commit {commit()}\n"
        f"python loop: {speed_before:.1f} ms before, {speed:.1f} ms on average (the previous "
        f"run: {f'{previous_speed:.1f} ms' if previous_speed else 'not measured'}); a slower "
        "host shows in every figure"
    )
    if failed:
        print(f"steps that failed: {', '.join(failed)}")
    if arguments.save:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        kept = dict(previous.get("figures", {}), **now) if isinstance(previous, dict) else now
        path.parent.mkdir(exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "source": f"bench/throughput.py at {commit()}, {stamp}, sizes "
                    f"{arguments.small}/{arguments.large}, load {load_before}",
                    "python_loop_ms": round(speed, 2),
                    "figures": kept,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"saved as the previous figures: {path.relative_to(REPO_ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
