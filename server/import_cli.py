"""``labelgraph import PROJECT_DIR FILE...``: import files into a project from the command line.

Files are read exactly as uploads to ``POST /api/project/import`` are (same formats, limits,
all-or-nothing transaction); a progress bar goes to stderr when it is a terminal, a one-line
summary to stdout (with ``--json``: the import report in Label Studio's JSON form instead).
Error messages name the user's files, not the names they were staged under.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from server.cli_checks import CliError, check_database, database_step
from server.cli_output import logs_below
from server.settings import ENV_PREFIX, Settings

log = logging.getLogger("labelgraph")
BAR_WIDTH = 30
PROJECT_DIR_ENV = ENV_PREFIX + "PROJECT_DIR"
REDRAW_SECONDS = 0.1


def add_import_parser(commands: Any) -> None:
    sub = commands.add_parser(
        "import",
        help="import task files (json, csv, tsv, txt, html, zip, media) into a project",
    )
    sub.add_argument(
        "paths",
        nargs="+",
        metavar="[PROJECT_DIR] FILE",
        help=f"project directory (default: ${PROJECT_DIR_ENV}), then the files to import",
    )
    sub.add_argument("--db", dest="database_url", help="database URL (default: SQLite file)")
    sub.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    sub.add_argument(
        "--single-assets",
        action="store_true",
        help="csv/tsv/txt files become one hosted file each instead of task lists",
    )
    sub.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_argument(
        "--json", action="store_true", help="print Label Studio's import report (JSON)"
    )


def resolve_project_dir(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Split ``paths`` into ``project_dir`` and ``files``: the first path is the project
    directory unless ``$LABELGRAPH_PROJECT_DIR`` is set and it is not a directory."""
    paths: list[str] = args.paths
    if os.environ.get(PROJECT_DIR_ENV) and not Path(paths[0]).is_dir():
        args.project_dir, args.files = None, paths
    elif len(paths) < 2:
        parser.error(f"give PROJECT_DIR and FILE... (or set {PROJECT_DIR_ENV})")
    else:
        args.project_dir, args.files = paths[0], paths[1:]


class ProgressBar:
    """``[#######.......]  45%  123,456 tasks`` redrawn in place on a terminal."""

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.drawn = False
        self.unfinished = False  # a bar is drawn on a line not yet ended
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
        self.drawn = self.unfinished = True

    def break_line(self) -> None:
        if self.unfinished:
            self.stream.write("\n")
            self.stream.flush()
            self.unfinished = False

    def close(self) -> None:
        if self._state is not None:
            self.stream.write("\r" + render(*self._state))
            self.drawn = self.unfinished = True
        self.break_line()


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
        raise CliError(
            f"project directory {settings.project_dir} does not exist; create it with "
            f"`labelgraph init {settings.project_dir}`"
        )
    paths = [Path(name) for name in args.files]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise CliError(f"not a file: {', '.join(missing)}")
    check_database(settings)
    project_id, _ = database_step(
        f"cannot open the project {settings.project_dir}", lambda: prepare_database(settings)
    )
    bar = ProgressBar(sys.stderr, enabled=not args.no_progress and sys.stderr.isatty())
    selection = Selection(files_as_tasks_list=not args.single_assets)
    place = import_staging.staging_place(settings)
    with contextlib.ExitStack() as stack:
        files = [IncomingFile(path.name, stack.enter_context(path.open("rb"))) for path in paths]
        source = import_staging.ImportSource(files=files)
        try:
            with logs_below(bar):
                result = db.with_connection(
                    import_staging.import_now, project_id, source, place, selection, bar.update
                )
        except DomainError as exc:
            bar.close()
            errors = exc.details.get("errors") or [exc.message]
            user_names = UserFileNames(paths)
            for message in errors:
                log.error("%s", user_names.restore(str(message)))
            log.error("nothing was imported")
            return 1
    bar.close()
    if args.json:
        json.dump(result.ls_json(), sys.stdout, ensure_ascii=False)
    else:
        counts = (
            counted(result.total_tasks, "task"),
            counted(result.completion_count, "completion"),
            counted(result.prediction_count, "prediction"),
        )
        sys.stdout.write(f"imported {', '.join(counts)} in {result.duration:.2f} s")
    sys.stdout.write("\n")
    return 0


def counted(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


class UserFileNames:
    """Puts the user's file paths back into messages that name the staged files
    (``<md5[:6]>-<safe name>``, as Label Studio names uploads)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        from server.services.imports.staging_dir import safe_name

        by_name: dict[str, list[str]] = {}
        for path in paths:
            by_name.setdefault(safe_name(path.name), []).append(str(path))
        self.patterns = [
            (re.compile(rf"\b[0-9a-f]{{6}}-{re.escape(name)}(?![\w.-])"), " or ".join(users))
            for name, users in by_name.items()
        ]

    def restore(self, message: str) -> str:
        for pattern, user_name in self.patterns:
            message = pattern.sub(user_name.replace("\\", "\\\\"), message)
        return message
