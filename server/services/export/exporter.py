"""Project export: format name -> a zip file under ``<project_dir>/export/`` (export-formats.md).

Tasks are read in pages by keyset (``Task.id > last_id``), each page in its own short database
access, and handed to the format's writer, which streams into the zip. Memory does not grow with
the project. The cyclic garbage collector is paused meanwhile (a page is a tree of small JSON
objects without cycles, freed by reference counting): its scans took half the export's time.
Large JSON, JSON_MIN, CSV, TSV, COCO and YOLO exports are read and formatted by worker
processes instead, a range of ids each, into parts of the zip (``server.services.export.parallel``).
The zip is written as ``<name>.part`` and renamed when complete; a failed export leaves nothing
behind. Finished exports are served by ``GET /data/export/<name>`` until they
expire (``LABELGRAPH_EXPORT_TTL``); every new export sweeps expired ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from server.db import database, with_connection
from server.errors import DomainError, not_found
from server.gc_pause import paused_gc
from server.json_text import load_json
from server.models import COMPLETED, Completion, Task
from server.services.config.model import LabelConfig
from server.services.export import parallel, writer_base
from server.services.export.formats import FORMAT_NAMES, available_formats
from server.services.export.images import CocoWriter, VocWriter, YoloWriter
from server.services.export.media import MediaResolver
from server.services.export.media_writers import AsrManifestWriter, BrushPngWriter, BrushWriter
from server.services.export.text_writers import (
    ConllWriter,
    CsvWriter,
    JsonMinWriter,
    JsonWriter,
    TsvWriter,
)
from server.services.export.writer_base import ExportTask, Writer, WriterContext
from server.services.export.zip_writer import ZipWriter
from server.services.files.store import EXPORT as EXPORT_AREA
from server.services.files.store import UPLOAD as UPLOAD_AREA
from server.services.files.store import FileStore, settings_file_store
from server.services.imports.validation import rename_undefined
from server.services.projects import get_project, parsed_config
from server.settings import Settings

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
STALE_WORK_SECONDS = 24 * 3600  # unfinished exports older than this are swept
WRITERS: dict[str, type[Writer]] = {
    "JSON": JsonWriter,
    "JSON_MIN": JsonMinWriter,
    "CSV": CsvWriter,
    "TSV": TsvWriter,
    "CONLL2003": ConllWriter,
    "COCO": CocoWriter,
    "VOC": VocWriter,
    "BRUSH_TO_NUMPY": BrushWriter,
    "BRUSH_TO_PNG": BrushPngWriter,
    "ASR_MANIFEST": AsrManifestWriter,
    "YOLO": YoloWriter,
}
assert tuple(WRITERS) == FORMAT_NAMES
# Formats whose large exports are read and formatted by worker processes, and their one zip
# entry (server.services.export.parallel).
PARALLEL_ENTRIES = {
    "JSON": "result.json",
    "JSON_MIN": "result.json",
    "CSV": "result.csv",
    "TSV": "result.csv",  # sic: Label Studio's name
}
_FILE_NAME = re.compile(r"^(\d{4}(?:-\d{2}){5})-([A-Z0-9_]+)-[0-9a-f]{16}\.zip$")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportResult:
    format: str
    file_name: str  # the stored file, as named in the download URL
    download_name: str  # <STAMP>-<FORMAT>.zip, as Label Studio names it
    path: Path
    size: int
    task_count: int
    created_at: int
    expires_at: int


def check_format(format_name: str | None, offered: list[str]) -> str:
    """The format to run, or an ``invalid`` DomainError that lists the offered names."""
    names = ", ".join(offered)
    details: dict[str, Any] = {"field": "format", "formats": offered}
    if not format_name:
        raise DomainError("invalid", f"No export format given: use one of {names}", details)
    if format_name not in FORMAT_NAMES:
        raise DomainError(
            "invalid", f"Unknown export format {format_name!r}: use one of {names}", details
        )
    if format_name not in offered:
        raise DomainError(
            "invalid",
            f"Format {format_name} is not supported for this project: use one of {names}",
            details,
        )
    return format_name


def export_project(
    project_id: int,
    format_name: str | None,
    settings: Settings,
    *,
    only_completed: bool = True,
    progress: Progress | None = None,
    task_ids: list[int] | None = None,
) -> ExportResult:
    """Export a project's tasks in ``format_name`` to a new zip file; see the module doc.

    ``only_completed`` (Label Studio's behaviour) exports the tasks that have completions;
    without it JSON, JSON_MIN, CSV and TSV also list tasks that have none. ``task_ids`` (the
    data manager's selection) exports only those tasks."""
    config, total = with_connection(_config_and_total, project_id, only_completed)
    if task_ids is not None:
        task_ids = sorted(set(task_ids))
        total = len(task_ids)
    name = check_format(format_name, available_formats(config))
    export_dir = settings.export_dir
    export_dir.mkdir(parents=True, exist_ok=True)
    sweep_exports(export_dir, settings.export_ttl)
    now = time.time()
    stamp = dt.datetime.fromtimestamp(now).strftime("%Y-%m-%d-%H-%M-%S")
    token = secrets.token_hex(8)
    file_name = f"{stamp}-{name}-{token}.zip"
    final = export_dir / file_name
    partial = export_dir / (file_name + ".part")
    work = export_dir / f".{token}.work"
    work.mkdir()
    media = MediaResolver(
        upload_dir=settings.upload_dir,
        work_dir=work,
        fetch_remote=settings.export_fetch_remote,
        timeout=settings.export_fetch_timeout,
        allow_private=settings.url_import_allow_private,
        fetch_shared_upload=shared_upload_fetcher(project_id, settings),
    )
    count = done = 0
    usable = parallel.usable(
        settings.export_processes,
        total,
        settings.export_parallel_min,
        task_ids,
        settings.resolved_database_url,
    )
    in_parts = usable and name in PARALLEL_ENTRIES
    # COCO and YOLO in parts: the workers resolve media themselves (not from a shared store)
    images_in_parts = usable and name in parallel.IMAGES and media.fetch_shared_upload is None
    try:
        while True:
            try:
                count, done = _write_zip(
                    partial,
                    work,
                    WriterContext(
                        zip=cast(ZipWriter, None),
                        config=config,
                        work_dir=work,
                        media=media,
                        format=name,
                        include_unlabeled=not only_completed,
                        escape_formulas=settings.export_escape_formulas,
                    ),
                    "parts" if in_parts else "images" if images_in_parts else "",
                    settings,
                    project_id,
                    only_completed,
                    total,
                    progress,
                    task_ids,
                )
                break
            except parallel.Fallback as why:  # the parts cannot make it: again, in-process
                log.info("export %s: in-process (%s)", name, why)
                images_in_parts = False
        partial.replace(final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = final.stat().st_size
    log.info("export %s: %d of %d tasks, %d bytes -> %s", name, count, done, size, file_name)
    return ExportResult(
        format=name,
        file_name=file_name,
        download_name=f"{stamp}-{name}.zip",
        path=final,
        size=size,
        task_count=count,
        created_at=int(now),
        expires_at=int(now) + settings.export_ttl,
    )


def _write_zip(
    partial: Path,
    work: Path,
    context: WriterContext,
    how: str,
    settings: Settings,
    project_id: int,
    only_completed: bool,
    total: int,
    progress: Progress | None,
    task_ids: list[int] | None,
) -> tuple[int, int]:
    """The export into the zip ``partial``: by worker processes (``how``: ``parts`` for one
    entry, ``images`` for COCO/YOLO) or in-process; returns the tasks written and read."""
    count = done = 0
    name = context.format
    with paused_gc(), ZipWriter(partial, writer_base.ZIP_LEVEL, work / "zip-directory") as archive:
        context.zip = archive
        context.resources = []
        config = context.config
        try:
            if how:

                def seen_so_far(seen: int) -> None:
                    if progress is not None:
                        progress(seen, max(total, seen))

                common: dict[str, Any] = {
                    "zip": archive,
                    "context": context,
                    "database_url": settings.resolved_database_url,
                    "project_id": project_id,
                    "only_completed": only_completed,
                    "processes": settings.export_processes,
                    "progress": seen_so_far,
                }
                if how == "parts":
                    count, done = parallel.export_in_parts(entry=PARALLEL_ENTRIES[name], **common)
                else:
                    count, done = parallel.export_images_in_parts(**common)
            else:
                writer = WRITERS[name](context)
                for page in task_pages(project_id, only_completed, config, only_ids=task_ids):
                    count += writer.add_page(page)
                    done += len(page)
                    if progress is not None:
                        progress(done, max(total, done))
                writer.finish()
        except BaseException:
            context.close_all()
            raise
    return count, done


def _config_and_total(project_id: int, only_completed: bool) -> tuple[LabelConfig, int]:
    project = get_project(project_id)
    total = project.labeled_task_count if only_completed else project.task_count
    return parsed_config(project), total


def task_pages(
    project_id: int,
    only_completed: bool,
    config: LabelConfig,
    page_size: int | None = None,
    only_ids: list[int] | None = None,
    *,
    after_id: int = 0,
    upto_id: int | None = None,
) -> Iterator[list[ExportTask]]:
    """The project's tasks in id order (only ``only_ids``, ascending, when given; only ids in
    ``(after_id, upto_id]``), a page at a time, each page read on its own.

    The next page is read on a helper thread while the caller formats the current one: the
    database's own work (SQLite stepping through its pages, PostgreSQL's server and the
    network) runs outside the GIL and overlaps the formatting."""
    page_size = page_size or PAGE_SIZE
    end: list[int] = []  # no more chunks (a chunk is never empty)
    chunks: Iterator[list[int] | None]
    if only_ids is None:
        chunks = iter(lambda: None, end)  # endless: until a page comes back empty
    else:
        chunks = (
            only_ids[start : start + page_size] for start in range(0, len(only_ids), page_size)
        )

    def read(after: int, chunk: list[int] | None) -> list[ExportTask]:
        bounds: dict[str, Any] = {} if chunk is None else {"among": chunk}
        if upto_id is not None:
            bounds["upto_id"] = upto_id
        page = with_connection(read_page, project_id, after, only_completed, page_size, **bounds)
        for task in page:
            task.data = rename_undefined(task.data, config)
        return page

    with ThreadPoolExecutor(1, thread_name_prefix="export-read") as reader:
        chunk = next(chunks, end)
        if chunk is end:
            return
        pending = reader.submit(read, after_id, chunk)
        while True:
            page = pending.result()
            if chunk is None and not page:
                return
            last_id = page[-1].id if page else 0
            chunk = next(chunks, end)
            if chunk is not end:
                pending = reader.submit(read, last_id if chunk is None else after_id, chunk)
            if page:
                yield page
            if chunk is end:
                return


def read_page(
    project_id: int,
    after_id: int,
    only_completed: bool,
    limit: int,
    among: list[int] | None = None,
    upto_id: int | None = None,
) -> list[ExportTask]:
    """Up to ``limit`` tasks with ids above ``after_id`` (and at most ``upto_id``), with their
    completions (2 queries).

    Rows are read raw as tuples of the needed columns and JSON text is parsed with orjson
    (PostgreSQL's driver hands ``json`` columns over parsed already): peewee's per-row
    conversion would double the export's time.
    """
    query = Task.select(Task.id, Task.data, Task.meta).where(
        Task.project == project_id, Task.id > after_id
    )
    if only_completed:
        query = query.where(COMPLETED)
    if among is not None:
        query = query.where(Task.id.in_(among))
    if upto_id is not None:
        query = query.where(Task.id <= upto_id)
    rows = database.execute(query.order_by(Task.id).limit(limit)).fetchall()
    if not rows:
        return []
    datas = _parse_all([row[1] for row in rows])
    tasks = [
        ExportTask(task_id, data, _json(meta), [])
        for (task_id, _, meta), data in zip(rows, datas, strict=True)
    ]
    by_id = {task.id: task.completions for task in tasks}
    completions = (
        Completion.select(
            Completion.task,
            Completion.id,
            Completion.created_at,
            Completion.payload,
            Completion.completed_by,
        )
        .where(
            Completion.project == project_id,
            Completion.task >= rows[0][0],
            Completion.task <= rows[-1][0],
        )
        .order_by(Completion.task, Completion.id)
    )
    found = database.execute(completions).fetchall()
    payloads = _parse_all([row[3] for row in found])
    for (task_id, completion_id, created_at, _, by), completion in zip(
        found, payloads, strict=True
    ):
        owner = by_id.get(task_id)
        if owner is not None:
            completion["id"] = completion_id
            completion["created_at"] = created_at
            if by is not None:  # made by a signed-in user (Label Studio's later field)
                completion["completed_by"] = by
            owner.append(completion)
    return tasks


def _json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return load_json(value)
    return value


def _parse_all(values: list[Any]) -> list[Any]:
    """A column of JSON values parsed: SQLite's texts in one :func:`load_json` of them joined
    as an array (a third of the time of one call each), PostgreSQL's parsed values as they
    are. :func:`load_json`, not ``orjson.loads``: orjson turns an integer beyond 64 bits
    into a float, so the export would change a stored value ``json.loads`` keeps."""
    if values and all(type(value) is str for value in values):
        parsed: list[Any] = load_json("[" + ",".join(values) + "]")
        return parsed
    return [_json(value) for value in values]


# --- finished exports ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFile:
    path: Path
    download_name: str


def download_name(file_name: str) -> str | None:
    """``<STAMP>-<FORMAT>.zip`` for a stored export's name; None for any other name."""
    match = _FILE_NAME.match(file_name)
    return None if match is None else f"{match.group(1)}-{match.group(2)}.zip"


def find_export(export_dir: Path, file_name: str, ttl: int) -> ExportFile:
    """A finished, unexpired export by its stored name (``not_found`` otherwise)."""
    match = _FILE_NAME.match(file_name)
    if match is None:
        raise not_found("Export", file_name)
    path = export_dir / file_name
    try:
        modified = path.stat().st_mtime
    except OSError:
        raise not_found("Export", file_name) from None
    if modified + ttl < time.time():
        path.unlink(missing_ok=True)
        raise not_found("Export", file_name)
    return ExportFile(path, f"{match.group(1)}-{match.group(2)}.zip")


def delete_export(path: Path, store: FileStore, project: str) -> None:
    """Delete a sent export: this process's file and, with a shared store, its copy there."""
    path.unlink(missing_ok=True)
    if store.shared:
        store.delete(project, EXPORT_AREA, path.name)


def shared_upload_fetcher(
    project_id: int, settings: Settings
) -> Callable[[str, Path], bool] | None:
    """With a shared file store, how media exports copy an upload another process received."""
    store = settings_file_store(settings)
    if not store.shared:
        return None
    project = with_connection(lambda: get_project(project_id).name)
    return lambda name, target: store.fetch(project, UPLOAD_AREA, name, target)


def sweep_exports(export_dir: Path, ttl: int) -> int:
    """Delete expired exports, and unfinished ones older than a day; returns how many."""
    now = time.time()
    removed = 0
    if not export_dir.is_dir():
        return 0
    for entry in export_dir.iterdir():
        try:
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        finished = _FILE_NAME.match(entry.name) is not None
        unfinished = entry.name.endswith(".zip.part") or (
            entry.name.startswith(".") and entry.name.endswith(".work")
        )
        if (finished and age > ttl) or (unfinished and age > max(ttl, STALE_WORK_SECONDS)):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed
