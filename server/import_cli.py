"""``labelgraph import PROJECT_DIR FILE...``: import files into a project from the command line.

Files are read exactly as uploads to ``POST /api/project/import`` are (same formats, limits,
all-or-nothing transaction); a progress bar goes to stderr when it is a terminal, the import
report (Label Studio's JSON form) to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import IO, Any

from server.settings import Settings

log = logging.getLogger("labelgraph")
BAR_WIDTH = 30
REDRAW_SECONDS = 0.1


def add_import_parser(commands: Any) -> None:
    sub = commands.add_parser(
        "import",
        help="import task files (json, csv, tsv, txt, html, zip, media) into a project",
    )
    sub.add_argument("project_dir", help="project directory (database and upload/)")
    sub.add_argument("files", nargs="+", metavar="FILE", help="files to import")
    sub.add_argument("--db", dest="database_url", help="database URL (default: SQLite file)")
    sub.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    sub.add_argument(
        "--single-assets",
        action="store_true",
        help="csv/tsv/txt files become one hosted file each instead of task lists",
    )
    sub.add_argument("--no-progress", action="store_true", help="no progress bar")


class ProgressBar:
    """``[#######.......]  45%  123,456 tasks`` redrawn in place on a terminal."""

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.drawn = False
        self._last = 0.0
        self._state: tuple[int, int, int] | None = None

    def update(self, tasks: int, done: int, total: int, force: bool = False) -> None:
        if not self.enabled:
            return
        self._state = (tasks, done, total)
        now = time.monotonic()
        if not force and now - self._last < REDRAW_SECONDS:
            return
        self._last = now
        self.stream.write("\r" + render(tasks, done, total))
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self._state is not None:
            self.stream.write("\r" + render(*self._state))
            self.drawn = True
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def render(tasks: int, done: int, total: int) -> str:
    fraction = min(1.0, done / total) if total > 0 else 1.0
    filled = round(fraction * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"[{bar}] {fraction * 100:3.0f}%  {tasks:,} tasks"


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    from server import db
    from server.app import prepare_database
    from server.errors import DomainError
    from server.services.imports import staging as import_staging
    from server.services.imports.report import Selection
    from server.services.imports.staging_dir import IncomingFile

    if not Path(settings.project_dir).is_dir():
        log.error(
            "project directory %s does not exist; create it with `labelgraph init %s`",
            settings.project_dir,
            settings.project_dir,
        )
        return 2
    paths = [Path(name) for name in args.files]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        log.error("not a file: %s", ", ".join(missing))
        return 2
    project_id, _ = prepare_database(settings)
    bar = ProgressBar(sys.stderr, enabled=not args.no_progress and sys.stderr.isatty())
    selection = Selection(files_as_tasks_list=not args.single_assets)
    place = import_staging.staging_place(settings)
    with contextlib.ExitStack() as stack:
        files = [IncomingFile(path.name, stack.enter_context(path.open("rb"))) for path in paths]
        source = import_staging.ImportSource(files=files)
        try:
            result = db.with_connection(
                import_staging.import_now, project_id, source, place, selection, bar.update
            )
        except DomainError as exc:
            bar.close()
            errors = exc.details.get("errors") or [exc.message]
            for message in errors:
                log.error("%s", message)
            log.error("nothing was imported")
            return 1
    bar.close()
    report = result.ls_json()
    json.dump(report, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    log.info(
        "imported %d tasks (%d completions, %d predictions) in %.2f s",
        result.total_tasks,
        result.completion_count,
        result.prediction_count,
        result.duration,
    )
    return 0
