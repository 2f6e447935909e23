"""``labelgraph export PROJECT_DIR --format F -o FILE``: export a project from the command line,
with a progress bar on stderr. Format names are case-insensitive; an export with no task in it
writes no file and says why."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from server.cli_checks import CliError, check_database, database_step
from server.cli_output import logs_below
from server.settings import Settings

log = logging.getLogger("labelgraph")


def add_export_parser(commands: Any) -> None:
    export = commands.add_parser("export", help="export a project's completions to a zip file")
    from server.cli import add_project_dir

    add_project_dir(export)
    export.add_argument(
        "--format", "-f", required=True, help="export format, e.g. JSON or CSV (any case)"
    )
    export.add_argument(
        "-o", "--output", help="zip file (or directory) to write; default: ./<stamp>-<FORMAT>.zip"
    )
    export.add_argument(
        "--all-tasks",
        action="store_true",
        help="list every task in JSON, JSON_MIN, CSV, TSV, labeled or not",
    )
    export.add_argument("--db", dest="database_url", help="database URL (default: SQLite file)")
    export.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")


class ProgressBar:
    """``export JSON  42% |########            | 42000/100000 tasks`` on one updating line."""

    WIDTH = 30

    def __init__(self, label: str, stream: TextIO | None = None, interval: float = 0.2) -> None:
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.interval = interval
        self.last = 0.0
        self.shown = False
        self.unfinished = False  # a bar is drawn on a line not yet ended

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < self.interval:
            return
        self.last = now
        fraction = done / total if total else 1.0
        filled = int(self.WIDTH * fraction)
        bar = "#" * filled + " " * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label} {fraction:4.0%} |{bar}| {done}/{total} tasks")
        self.stream.flush()
        self.shown = self.unfinished = True

    def break_line(self) -> None:
        if self.unfinished:
            self.stream.write("\n")
            self.stream.flush()
            self.unfinished = False

    def close(self) -> None:
        self.break_line()


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    from server.app import prepare_database
    from server.errors import DomainError
    from server.services.export.exporter import export_project

    if not Path(settings.project_dir).is_dir():
        raise CliError(f"project directory {settings.project_dir} does not exist")
    check_database(settings)
    project_id, _ = database_step(
        f"cannot open the project {settings.project_dir}", lambda: prepare_database(settings)
    )
    format_name = args.format.upper()  # every format name is upper case
    progress = ProgressBar(f"export {format_name}")
    try:
        with logs_below(progress):
            result = export_project(
                project_id,
                format_name,
                settings,
                only_completed=not args.all_tasks,
                progress=progress,
            )
    except DomainError as exc:
        progress.close()
        log.error("export failed: %s", exc.message)
        return 2
    progress.close()
    if result.task_count == 0:
        result.path.unlink(missing_ok=True)
        log.error("nothing was exported: %s", _why_empty(project_id, args.all_tasks))
        return 1
    target = Path(args.output) if args.output else Path(result.download_name)
    if target.is_dir():
        target = target / result.download_name
    try:
        shutil.move(result.path, target)
    except OSError as exc:
        log.error("cannot write %s: %s", target, exc)
        result.path.unlink(missing_ok=True)
        return 2
    log.info(
        "exported %d tasks as %s to %s (%d bytes)",
        result.task_count,
        result.format,
        target,
        result.size,
    )
    return 0


def _why_empty(project_id: int, all_tasks: bool) -> str:
    from server import db
    from server.services import projects

    project = db.with_connection(projects.get_project, project_id)
    if project.task_count == 0:
        return "the project has no tasks (add some with `labelgraph import`)"
    if all_tasks:  # formats other than JSON, JSON_MIN, CSV, TSV list completed tasks only
        return (
            f"none of the project's {project.task_count} tasks has a completion, and this "
            "format exports only tasks with completions (--all-tasks applies to JSON, "
            "JSON_MIN, CSV and TSV)"
        )
    return (
        f"none of the project's {project.task_count} tasks has a completion, and only tasks "
        "with completions are exported; add --all-tasks to export every task (JSON, JSON_MIN, "
        "CSV, TSV)"
    )
