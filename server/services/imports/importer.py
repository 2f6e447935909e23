"""Task import (rest-api.md §6): JSON bodies, uploaded files, archives and URLs -> tasks.

One import is one write transaction. Items are read lazily (a JSON body's list, or the readers
of :mod:`server.services.imports.sources` for files), validated one by one and inserted in
chunks, so memory stays bounded whatever the size of a file. The first invalid item stops the
inserts; validation goes on to collect up to 100 of Label Studio's messages, then the
transaction is rolled back: nothing is stored. Uploaded files wait in a staging directory and
are moved into ``upload/`` only by a successful import (and removed again should the commit
fail). Task counters are computed in Python from the imported completions/predictions, so no
per-task statistics query runs afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peewee import chunked

from server.db import bulk_insert, database, is_sqlite, released, write_transaction
from server.errors import DomainError
from server.gc_pause import paused_gc
from server.ls_json import completion_json, import_report_json, is_cancelled, mean_score
from server.models import Completion, Prediction, Project, Task, Upload, dump_json, now_seconds
from server.services import projects
from server.services.config.model import LabelConfig
from server.services.imports.sources import (
    OBJECT_BY_FORMAT,
    TASK_LIST_FORMATS,
    FileError,
    ImportLimits,
    IncomingFile,
    ReadPosition,
    StagedFile,
    Staging,
    file_items,
    inside,
    json_items,
    json_start,
    new_staging,
    stage_file,
    too_large,
    url_file_name,
)
from server.services.imports.validation import (
    MAX_MESSAGES,
    UNDEFINED_KEY,
    ItemError,
    ValidTask,
    validate_item,
)
from server.services.projects import get_project, lock_project, parsed_config
from server.services.tasks.tasks import PREDICTION_COLUMNS, prediction_rows
from server.services.url_fetch import FetchPolicy, fetch

log = logging.getLogger(__name__)

CHUNK = 2000
PREVIEW_SIZE = 10
UPLOAD_ROWS_PER_INSERT = 500
EMPTY_CONFIG = "<View></View>"
# Progress callback: (tasks read so far, bytes read so far, bytes to read in all).
Progress = Callable[[int, int, int], None]

TASK_COLUMNS = [
    "project_id",
    "position",
    "data",
    "meta",
    "created_at",
    "updated_at",
    "total_completions",
    "cancelled_completions",
    "total_predictions",
    "is_labeled",
    "completed_at",
    "predictions_score",
]
# A task without completions, predictions or meta needs only these (the rest are SQL defaults).
PLAIN_TASK_COLUMNS = ["project_id", "position", "data", "created_at", "updated_at"]
COMPLETION_COLUMNS = [
    "project_id",
    "task_id",
    "created_at",
    "updated_at",
    "was_cancelled",
    "payload",
]


@dataclass
class ImportResult:
    task_ids: list[int]
    completion_count: int
    prediction_count: int
    preview: list[dict[str, Any]]
    duration: float
    project_name: str = ""
    formats: dict[str, int] = field(default_factory=dict)
    # Label Studio's file-import report fields (§6.6); None for JSON-body imports.
    selected_formats: list[str] | None = None
    selected_objects: list[str | None] | None = None
    files_as_tasks_list: bool = True
    show_files_as_tasks_list: bool | None = None
    # Tasks imported (or, for a staged import not applied yet, to import); -1: len(task_ids).
    total_tasks: int = -1

    def __post_init__(self) -> None:
        if self.total_tasks < 0:
            self.total_tasks = len(self.task_ids)

    def ls_json(self, staged_id: int | None = None) -> dict[str, Any]:
        """The report in Label Studio 0.9's import answer form (rest-api.md §6.6)."""
        return import_report_json(
            self.project_name,
            self.task_ids,
            self.completion_count,
            self.prediction_count,
            self.preview,
            self.duration,
            self.formats,
            selected_formats=self.selected_formats,
            selected_objects=self.selected_objects,
            files_as_tasks_list=self.files_as_tasks_list,
            show_files_as_tasks_list=self.show_files_as_tasks_list,
            total_tasks=self.total_tasks,
            staged_id=staged_id,
        )

    def to_json(self) -> dict[str, Any]:
        """The report without task ids (staged imports keep it in the database)."""
        return {
            "total_tasks": self.total_tasks,
            "completion_count": self.completion_count,
            "prediction_count": self.prediction_count,
            "preview": self.preview,
            "project_name": self.project_name,
            "formats": self.formats,
            "selected_formats": self.selected_formats,
            "selected_objects": self.selected_objects,
            "files_as_tasks_list": self.files_as_tasks_list,
            "show_files_as_tasks_list": self.show_files_as_tasks_list,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ImportResult:
        return cls(task_ids=[], duration=0.0, **value)


@dataclass(frozen=True)
class Selection:
    """What a file import reads: the formats chosen (None or empty: all, as Label Studio) and
    whether csv/tsv/txt files are task lists (True) or single assets (False)."""

    formats: tuple[str, ...] | None = None
    files_as_tasks_list: bool = True


# --------------------------------------------------------------------------- JSON bodies


@dataclass(frozen=True)
class SpooledJSON:
    """A large JSON request body that the REST facade wrote to a file instead of parsing it:
    its tasks are read incrementally, so memory stays bounded whatever the body's size."""

    path: Path


def _spooled_items(body: SpooledJSON) -> Iterator[Any]:
    """The items of a spooled body, with the answers an in-memory body gets."""
    with body.path.open("rb") as handle:
        first = json_start(handle)
        if not first:
            raise _data_is_empty()
        if first not in (b"[", b"{"):
            message = "Incorrect input data type, it must be JSON dict or list"
            raise DomainError("invalid_tasks", message, {"errors": [message]})
        try:
            yield from json_items(handle, "request body", file_rules=False)
        except FileError as exc:
            message = "Malformed JSON body: " + exc.message.split(": ", 1)[-1]
            raise DomainError("invalid", message, {"errors": [message]}) from None


def as_task_list(payload: Any) -> Iterable[Any]:
    """A JSON body -> its items: a list as is, one object as a one-item list, a spooled body
    read incrementally."""
    if isinstance(payload, SpooledJSON):
        return _spooled_items(payload)
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        if not payload:
            raise _data_is_empty()
        return payload
    message = "Incorrect input data type, it must be JSON dict or list"
    raise DomainError("invalid_tasks", message, {"errors": [message]})


def _data_is_empty() -> DomainError:
    return DomainError("invalid", "data is empty", {"errors": ["data is empty"]})


def import_tasks(
    project_id: int, items: Any, *, max_tasks: int = ImportLimits.max_tasks
) -> ImportResult:
    """Validate and store tasks (with their completions and predictions) atomically."""
    started = time.perf_counter()
    items = as_task_list(items)
    with paused_gc(), write_transaction():
        project = lock_project(project_id)
        config = parsed_config(project)
        stored = _store(project, config, iter(items), insert=True, max_tasks=max_tasks)
        result = _finish(project, stored)
    result.duration = round(time.perf_counter() - started, 6)
    return result


# --------------------------------------------------------------------------- the pipeline


@dataclass
class _Stored:
    start: int  # position of the first new task
    count: int = 0
    labeled: int = 0
    completions: int = 0
    predictions: int = 0
    head: list[ValidTask] = field(default_factory=list)  # the first tasks, for the preview


def _store(
    project: Project,
    config: LabelConfig,
    items: Iterator[Any],
    *,
    insert: bool,
    max_tasks: int,
    progress: Callable[[int], None] | None = None,
) -> _Stored:
    """Validate ``items`` one by one and (``insert``) store them in chunks."""
    stored = _Stored(start=project.task_count)
    errors: list[str] = []
    pending: list[ValidTask] = []
    now = now_seconds()

    def flush() -> None:
        if len(stored.head) < PREVIEW_SIZE:
            stored.head.extend(pending[: PREVIEW_SIZE - len(stored.head)])
        if insert:
            counts = _insert_chunk(project.id, stored.start + stored.count, pending, now)
        else:
            counts = _count_children(pending)
        stored.labeled += counts[0]
        stored.completions += counts[1]
        stored.predictions += counts[2]
        stored.count += len(pending)
        if progress is not None:
            progress(stored.count)

    index = 0
    try:
        for item in items:
            if index >= max_tasks:
                raise too_large(
                    f"Too many tasks: one import may create at most {max_tasks} tasks "
                    "(LABELGRAPH_MAX_IMPORT_TASKS)"
                )
            try:
                task = validate_item(item, config)
            except ItemError as exc:
                errors.append(f"Error   at item {index}: {exc} :: {item!r}")
                if len(errors) >= MAX_MESSAGES:
                    break
                index += 1
                continue
            index += 1
            if errors:
                continue  # nothing more is stored: only collect messages
            pending.append(task)
            if len(pending) >= CHUNK:
                flush()
                pending = []
    except FileError as exc:
        if not errors:
            raise
        errors.append(exc.message)
    if errors:
        raise DomainError("invalid_tasks", errors[0], {"errors": errors[:MAX_MESSAGES]})
    if pending or progress is not None:
        flush()
    if index == 0:
        raise _data_is_empty()
    return stored


def _count_children(chunk: list[ValidTask]) -> tuple[int, int, int]:
    """(labeled tasks, completions, predictions) of a chunk."""
    labeled = completions = predictions = 0
    for task in chunk:
        if task.completions:
            labeled += 1
            completions += len(task.completions)
        if task.predictions:
            predictions += len(task.predictions)
    return labeled, completions, predictions


def _completion_payload(completion: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    payload = {k: v for k, v in completion.items() if k not in ("id", "created_at")}
    created = completion.get("created_at")
    if not isinstance(created, int) or isinstance(created, bool) or created < 0:
        created = now_seconds()
    return created, payload


def _task_row(project_id: int, position: int, task: ValidTask, now: int) -> tuple[Any, ...]:
    completed_at = None
    cancelled = 0
    for completion in task.completions:
        created, payload = _completion_payload(completion)
        completed_at = created if completed_at is None else max(completed_at, created)
        cancelled += is_cancelled(payload)
    return (
        project_id,
        position,
        dump_json(task.data),
        None if task.meta is None else dump_json(task.meta),
        now,
        now,
        len(task.completions),
        cancelled,
        len(task.predictions),
        bool(task.completions),
        completed_at,
        mean_score(task.predictions),
    )


def _insert_chunk(
    project_id: int, position: int, chunk: list[ValidTask], now: int
) -> tuple[int, int, int]:
    """Insert tasks at ``position``… in order (ids rise with positions), then their
    completions and predictions; returns (labeled tasks, completions, predictions).
    Consecutive plain tasks use the short column list."""
    start = position
    run: list[tuple[Any, ...]] = []
    run_is_plain = True
    labeled = completions = predictions = 0
    for task in chunk:
        plain = not (task.completions or task.predictions or task.meta is not None)
        if plain != run_is_plain and run:
            bulk_insert(Task, PLAIN_TASK_COLUMNS if run_is_plain else TASK_COLUMNS, run)
            run = []
        run_is_plain = plain
        if plain:
            run.append((project_id, position, dump_json(task.data), now, now))
        else:
            if task.completions:
                labeled += 1
                completions += len(task.completions)
            predictions += len(task.predictions)
            run.append(_task_row(project_id, position, task, now))
        position += 1
    bulk_insert(Task, PLAIN_TASK_COLUMNS if run_is_plain else TASK_COLUMNS, run)
    if completions or predictions:
        _insert_children(project_id, chunk, _ids_between(project_id, start, position), now)
    return labeled, completions, predictions


def _ids_between(project_id: int, start: int, stop: int | None = None) -> list[int]:
    query = Task.select(Task.id).where(Task.project == project_id, Task.position >= start)
    if stop is not None:
        query = query.where(Task.position < stop)
    return [row[0] for row in database.execute(query.order_by(Task.position)).fetchall()]


def _insert_children(
    project_id: int, chunk: list[ValidTask], task_ids: list[int], now: int
) -> None:
    completion_rows: list[tuple[Any, ...]] = []
    prediction_rows_: list[tuple[Any, ...]] = []
    for task, task_id in zip(chunk, task_ids, strict=True):
        for completion in task.completions:
            created, payload = _completion_payload(completion)
            completion_rows.append(
                (project_id, task_id, created, now, is_cancelled(payload), dump_json(payload))
            )
        if task.predictions:
            prediction_rows_.extend(prediction_rows(project_id, task_id, task.predictions, now))
    bulk_insert(Completion, COMPLETION_COLUMNS, completion_rows)
    bulk_insert(Prediction, PREDICTION_COLUMNS, prediction_rows_)


def _finish(project: Project, stored: _Stored) -> ImportResult:
    """Update the project's counters; the result with the new ids and the preview."""
    Project.update(
        task_count=Project.task_count + stored.count,
        labeled_task_count=Project.labeled_task_count + stored.labeled,
        completion_count=Project.completion_count + stored.completions,
        prediction_count=Project.prediction_count + stored.predictions,
        updated_at=now_seconds(),
    ).where(Project.id == project.id).execute()
    task_ids = _ids_between(project.id, stored.start)
    return ImportResult(
        task_ids=task_ids,
        completion_count=stored.completions,
        prediction_count=stored.predictions,
        preview=_preview(stored.head, task_ids[:PREVIEW_SIZE]),
        duration=0.0,
        project_name=project.name,
    )


def _preview(head: list[ValidTask], task_ids: list[int] | None) -> list[dict[str, Any]]:
    """The first tasks as data objects with their completions (with their new ids once
    stored) and predictions (§6.6)."""
    stored: dict[int, list[Completion]] = {}
    if task_ids and any(task.completions for task in head):
        for c in Completion.select().where(Completion.task.in_(task_ids)).order_by(Completion.id):
            stored.setdefault(c.task_id, []).append(c)
    preview = []
    for number, task in enumerate(head):
        item = dict(task.data)
        if task.completions:
            if task_ids:
                item["completions"] = [completion_json(c) for c in stored.get(task_ids[number], [])]
            else:
                item["completions"] = task.completions
        if task.predictions:
            item["predictions"] = task.predictions
        preview.append(item)
    return preview


# --------------------------------------------------------------------------- files


def stage_files(files: Sequence[IncomingFile], staging_root: Path, limits: ImportLimits) -> Staging:
    """Copy a request's files into a new staging directory (archives unpacked)."""
    if len(files) > limits.max_files:
        message = (
            f"Too many files: {len(files)} in one request, at most {limits.max_files} "
            "(LABELGRAPH_MAX_UPLOAD_FILES)"
        )
        raise DomainError("invalid", message, {"errors": [message]})
    staging = new_staging(staging_root)
    try:
        for incoming in files:
            stage_file(staging, incoming.name, incoming.stream, limits)
    except BaseException:
        staging.remove()
        raise
    return staging


def stage_url(url: str, staging_root: Path, limits: ImportLimits, policy: FetchPolicy) -> Staging:
    """Download ``url`` into a new staging directory, named after the URL (§6.1)."""
    if not isinstance(url, str) or not url.strip():
        message = "No URL to import: send it in the form field url"
        raise DomainError("invalid", message, {"errors": [message]})
    staging = new_staging(staging_root)
    try:
        download = staging.directory / "download"
        with download.open("w+b") as out:
            with released():  # no pooled connection held while the download runs
                fetched = fetch(url, out, policy)
            log.info("URL import fetched %s (%d bytes)", fetched.url, fetched.size)
            out.seek(0)
            stage_file(staging, url_file_name(url), out, limits)
        download.unlink()
    except BaseException:
        staging.remove()
        raise
    return staging


@dataclass
class _Plan:
    files: list[StagedFile]  # the files to read, in order
    found: dict[str, int]
    selected: list[str]
    objects: list[str | None]
    show_list: bool

    def report(self, result: ImportResult, selection: Selection) -> ImportResult:
        result.formats = self.found
        result.selected_formats = self.selected
        result.selected_objects = self.objects
        result.files_as_tasks_list = selection.files_as_tasks_list
        result.show_files_as_tasks_list = self.show_list
        return result


def plan_files(staging: Staging, selection: Selection) -> _Plan:
    readable = [f for f in staging.files if f.parse]
    found = dict(Counter(f.format for f in readable))
    chosen = list(selection.formats) if selection.formats is not None else sorted(found)
    files = [f for f in readable if not chosen or f.format in chosen]
    as_list = selection.files_as_tasks_list
    objects = [
        None if as_list and fmt in TASK_LIST_FORMATS else OBJECT_BY_FORMAT.get(fmt)
        for fmt in chosen
    ]
    show = any(fmt in TASK_LIST_FORMATS for fmt in chosen)
    return _Plan(files, found, chosen, objects, show)


class _DataKeys:
    """Label Studio's consistency checks of file imports (§6.4): every file gives the same data
    keys (those of its first task), and they match the keys all of the project's tasks have."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.keys: set[str] | None = None
        self.first_file = ""

    def check(self, file_name: str, item: Any) -> None:
        data = item.get("data") if isinstance(item, dict) else None
        keys = set(data) if isinstance(data, dict) else set()
        if self.keys is None:
            self.keys = keys
            self.first_file = file_name
            self._check_project(keys)
        elif keys != self.keys:
            raise _inconsistent(_files_message(keys, self.keys, file_name))

    def _check_project(self, keys: set[str]) -> None:
        if not self.project.task_count:
            return
        common = project_data_keys(self.project.id, self.project.task_count)
        imported = keys - {UNDEFINED_KEY}
        if not common or common == {UNDEFINED_KEY} or not imported or imported == common:
            return
        raise _inconsistent(
            "Import data inconsistent with current project:\n"
            f"Imported column names {','.join(sorted(imported))}\n"
            f"are inconsistent with common columns found in dataset: {','.join(sorted(common))}"
        )


def _inconsistent(message: str) -> DomainError:
    return DomainError("invalid_tasks", message, {"errors": [message]})


def _files_message(new: set[str], old: set[str], file_name: str) -> str:
    """Label Studio's wording for files whose data keys differ."""
    new_keys, old_keys = ",".join(sorted(new)), ",".join(sorted(old))
    prefix = "You're trying to import inconsistent data:\n"
    if new_keys == UNDEFINED_KEY:
        return (
            f"{prefix}uploading a single file {file_name} clashes with data key(s) found from "
            f'other files:\n"{old_keys}"'
        )
    if old_keys == UNDEFINED_KEY:
        return (
            f"{prefix}uploading tabular data from {file_name} with data key(s) {new_keys}, "
            "clashes with other raw binary files (images, audios, etc.)"
        )
    return (
        f'{prefix}uploading tabular data from "{file_name}" with data key(s) "{new_keys}", '
        f'clashes with data key(s) found from other files:\n"{old_keys}"'
    )


_SQLITE_KEYS = (
    'SELECT j."key", COUNT(*) FROM "task" AS t, json_each(t."data") AS j '
    'WHERE t."project_id" = ? AND json_type(t."data") = \'object\' GROUP BY j."key"'
)
_PG_KEYS = (
    'SELECT k, COUNT(*) FROM "task" AS t CROSS JOIN LATERAL json_object_keys('
    "CASE WHEN json_typeof(t.\"data\") = 'object' THEN t.\"data\" ELSE '{}'::json END) AS k "
    'WHERE t."project_id" = %s GROUP BY k'
)


def project_data_keys(project_id: int, task_count: int) -> set[str]:
    """The data keys every task of the project has (one aggregate query)."""
    sql = _SQLITE_KEYS if is_sqlite() else _PG_KEYS
    rows = database.execute_sql(sql, (project_id,)).fetchall()
    return {str(key) for key, count in rows if count == task_count}


def _file_task_items(
    staging: Staging,
    plan: _Plan,
    selection: Selection,
    config: LabelConfig,
    keys: _DataKeys,
    position: ReadPosition,
) -> Iterator[Any]:
    for staged in plan.files:
        first = True
        data_keys = len(config.data_types)
        for item in file_items(staging, staged, selection.files_as_tasks_list, data_keys, position):
            if first:
                keys.check(staged.name, item)
                first = False
            yield item


def generated_config(config: LabelConfig, plan: _Plan, keys: _DataKeys) -> str | None:
    """The config an empty one becomes after a file upload (§6.2 step 5), or None: one data
    key and one object type give ``<View><Image name="image" value="$image"/></View>``. Two
    object types are an error (Label Studio answered 500 after storing the tasks, Q-3)."""
    if not config.is_empty or keys.keys is None:
        return None
    data_keys = sorted(keys.keys)
    if len(data_keys) != 1:
        return None  # Label Studio writes <View></View>: nothing changes
    objects = set(plan.objects)
    if len(objects) > 1:
        message = (
            "More than one data type is presented: "
            + ", ".join(sorted(o or "task list (csv, tsv, txt)" for o in objects))
            + ". Set a labeling config first, or import one type of file at a time"
        )
        raise DomainError("invalid_tasks", message, {"errors": [message]})
    tag = next(iter(objects), None)
    if not tag:
        return None
    key = tag.lower() if data_keys[0] == UNDEFINED_KEY else data_keys[0]
    return f'<View><{tag} name="{tag.lower()}" value="${key}"/></View>'


def _auto_config(project: Project, text: str | None) -> None:
    if text is None:
        return
    try:
        projects.set_label_config(project.id, text)
    except DomainError as exc:
        log.info("no labeling config generated for %s: %s", project.name, exc.message)
        return
    log.info("labeling config generated from the upload: %s", text)


def _store_uploads(project_id: int, staging: Staging, upload_dir: Path) -> list[Path]:
    """Move the staged files into ``upload/``; record them. Returns the files it created
    (removed again by the caller should the transaction fail)."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    created: list[Path] = []
    rows = []
    now = now_seconds()
    try:
        for staged in staging.files:
            target = upload_dir / staged.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not inside(upload_dir, target.parent) or target.is_symlink():
                raise FileError(staged.name, "unsafe file name")
            existed = target.exists()
            os.replace(staging.path(staged), target)
            if not existed:
                created.append(target)
            kind = mimetypes.guess_type(staged.name)[0]
            rows.append((project_id, staged.name, staged.name, staged.size, kind, now))
    except BaseException:
        _remove(created)
        raise
    columns = [
        Upload.project,
        Upload.name,
        Upload.original_name,
        Upload.size,
        Upload.content_type,
        Upload.created_at,
    ]
    # Chunks keep each statement under SQLite's (and PostgreSQL's) bound-variable limit.
    for batch in chunked(rows, UPLOAD_ROWS_PER_INSERT):
        Upload.insert_many(batch, fields=columns).on_conflict(
            conflict_target=[Upload.project, Upload.name],
            preserve=[Upload.size, Upload.content_type, Upload.created_at],
        ).execute()
    return created


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def read_staging(
    project_id: int,
    staging: Staging,
    selection: Selection,
    *,
    limits: ImportLimits,
    upload_dir: Path | None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import the files of ``staging`` (``upload_dir`` given) or, without ``upload_dir``, only
    validate them and report what an import would do (staged imports)."""
    started = time.perf_counter()
    insert = upload_dir is not None
    created: list[Path] = []
    position = ReadPosition(total=sum(f.size for f in staging.files if f.parse))

    def report(count: int) -> None:
        if progress is not None:
            progress(count, position.current, position.total)

    try:
        with paused_gc(), _transaction(insert):
            project = lock_project(project_id) if insert else get_project(project_id)
            config = parsed_config(project)
            plan = plan_files(staging, selection)
            keys = _DataKeys(project)
            items = _file_task_items(staging, plan, selection, config, keys, position)
            stored = _store(
                project, config, items, insert=insert, max_tasks=limits.max_tasks, progress=report
            )
            generated = generated_config(config, plan, keys)
            if insert:
                result = _finish(project, stored)
                _auto_config(project, generated)
                assert upload_dir is not None
                created = _store_uploads(project.id, staging, upload_dir)
            else:
                result = _dry_result(project, stored)
    except BaseException:
        _remove(created)
        raise
    result.duration = round(time.perf_counter() - started, 6)
    return plan.report(result, selection)


def _transaction(write: bool) -> contextlib.AbstractContextManager[Any]:
    """A write transaction, or a plain one for a dry run (no write lock held)."""
    return write_transaction() if write else database.atomic()


def _dry_result(project: Project, stored: _Stored) -> ImportResult:
    return ImportResult(
        task_ids=[],
        completion_count=stored.completions,
        prediction_count=stored.predictions,
        preview=_preview(stored.head, None),
        duration=0.0,
        project_name=project.name,
        total_tasks=stored.count,
    )


# --------------------------------------------------------------------------- staged JSON


def stage_tasks(items: Any, staging_root: Path) -> Staging:
    """A JSON body kept for a staged import (checked like an import of it would be)."""
    items = as_task_list(items)
    staging = new_staging(staging_root)
    try:
        staging.tasks_path.write_text(dump_json(items), encoding="utf-8")
    except BaseException:
        staging.remove()
        raise
    return staging


def read_staged_tasks(
    project_id: int, staging: Staging, *, limits: ImportLimits, insert: bool
) -> ImportResult:
    """Import (or only check) a staged JSON body."""
    started = time.perf_counter()
    with paused_gc(), _transaction(insert), staging.tasks_path.open("rb") as handle:
        project = lock_project(project_id) if insert else get_project(project_id)
        config = parsed_config(project)
        items = json_items(handle, "tasks.json", file_rules=False)
        stored = _store(project, config, items, insert=insert, max_tasks=limits.max_tasks)
        result = _finish(project, stored) if insert else _dry_result(project, stored)
    result.duration = round(time.perf_counter() - started, 6)
    return result
