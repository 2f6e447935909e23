"""``labelgraph export PROJECT_DIR --format F -o FILE``: export a project from the command line,
with a progress bar on stderr."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from server.settings import Settings

log = logging.getLogger("labelgraph")


def add_export_parser(commands: Any) -> None:
    export = commands.add_parser("export", help="export a project's completions to a zip file")
    export.add_argument("project_dir", help="project directory (database and upload/)")
    export.add_argument("--format", "-f", required=True, help="export format, e.g. JSON or CSV")
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
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    from server.app import prepare_database
    from server.errors import DomainError
    from server.services.export.exporter import export_project

    if not Path(settings.project_dir).is_dir():
        log.error("project directory %s does not exist", settings.project_dir)
        return 2
    project_id, _ = prepare_database(settings)
    progress = ProgressBar(f"export {args.format}")
    try:
        result = export_project(
            project_id,
            args.format,
            settings,
            only_completed=not args.all_tasks,
            progress=progress,
        )
    except DomainError as exc:
        progress.close()
        log.error("export failed: %s", exc.message)
        return 2
    progress.close()
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
