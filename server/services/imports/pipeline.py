"""The import pipeline: validate items one by one and insert them in chunks.

One import is one write transaction. Items are validated lazily and inserted in chunks, so
memory stays bounded whatever the size of a file. The first invalid item stops the inserts;
validation goes on to collect up to 100 of Label Studio's messages, then the transaction is
rolled back: nothing is stored. Task counters are computed in Python from the imported
completions/predictions, so no per-task statistics query runs afterwards.

Each chunk is converted to rows in the caller's thread, then inserted (:class:`_Writer`) by
one writer thread on the same connection while the caller validates and converts the next
chunk, so the database's share of an import overlaps the Python share instead of following
it (both drivers release the GIL while a statement runs). A chunk's keys (id, completed_at)
come back to the caller, which keeps them; once every chunk is stored, :func:`finish` counts
them in the rank blocks (:func:`server.services.tasks.rank_blocks.count_import`). It is
still one transaction on one connection, so an import stays all-or-nothing (a failure or a
SIGKILL leaves nothing of it) and readers see none of it before the commit.

On PostgreSQL the writer reads a chunk's ids back after its ``COPY`` (other projects' writers
take ids from the same sequence meanwhile). On SQLite the import holds the database's only
write lock, so it gives the ids itself, from the next id the table would give: the keys are
known before the chunk is written, and the writer (the slower of the two threads) no longer
reads 5,000 rows back per chunk: 100k tasks with a completion each, in-process, took 3.21 s
instead of 3.96 (medians of 6 alternated runs, 2026-12-03).

On SQLite each table's rows of a chunk go in as few statements as its 32,766 bound parameters
allow (``WRITER_ROWS``: 2,730 tasks, 5,000 completions or labels, the whole chunk's search
texts per statement) instead of 250 rows each: ~6 statements per chunk of 5,000 tasks instead
of ~80, which took the writer's CPU for 100k tasks with a completion each from 1.44 s to
1.20 s, and gives the writer the GIL back only ~6 times per chunk (each time it may wait up
to the interpreter's switch interval while the caller converts: with 80 statements a chunk
that wait made a writer thread a loss on SQLite, see :class:`_Writer`).
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import peewee

from server.db import database, is_sqlite, write_transaction
from server.db_rows import insert_rows
from server.errors import DomainError
from server.int_ranges import is_timestamp
from server.ls_json import completion_json, is_cancelled, mean_score
from server.models import (
    Completion,
    Prediction,
    Project,
    Task,
    TaskLabel,
    dump_json,
    now_seconds,
)
from server.services import events
from server.services.config.model import LabelConfig
from server.services.datamanager import labels, search
from server.services.imports.report import ImportResult
from server.services.imports.staging_dir import (
    FileError,
    too_large,
)
from server.services.imports.validation import (
    MAX_MESSAGES,
    ItemError,
    ValidTask,
    validate_item,
)
from server.services.tasks import rank_blocks
from server.services.tasks.tasks import PREDICTION_COLUMNS, prediction_rows

CHUNK = 5000
PREVIEW_SIZE = 10
# SQLite: rows per multi-row INSERT in the writer (capped by the bound-parameter limit).
WRITER_ROWS = CHUNK
# SQLite: write chunks from the writer thread (False: in the caller's thread, as before
# imports4; same CPU, no overlap). See :class:`_Writer`.
SQLITE_WRITER_THREAD = True

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
COMPLETED_AT = TASK_COLUMNS.index("completed_at")
# A chunk of tasks without completions, predictions or meta needs only these (the rest are SQL
# defaults).
PLAIN_TASK_COLUMNS = ["project_id", "position", "data", "created_at", "updated_at"]
COMPLETION_COLUMNS = [
    "project_id",
    "task_id",
    "created_at",
    "updated_at",
    "was_cancelled",
    "payload",
]


def data_is_empty() -> DomainError:
    return DomainError("invalid", "data is empty", {"errors": ["data is empty"]})


@dataclass
class Stored:
    start: int  # position of the first new task
    count: int = 0
    labeled: int = 0
    completions: int = 0
    predictions: int = 0
    head: list[ValidTask] = field(default_factory=list)  # the first tasks, for the preview
    task_ids: list[int] = field(default_factory=list)  # of the stored tasks, in order
    # Their keys in the rank blocks' orders, counted once all are stored (:func:`finish`),
    # kept as 8 bytes a value (a million pairs as tuples took ~100 MB):
    unlabeled_ids: array[int] = field(default_factory=lambda: array("q"))  # in order
    completed_at: array[int] = field(default_factory=lambda: array("q"))  # of the labeled,
    completed_ids: array[int] = field(default_factory=lambda: array("q"))  # ids in order


def store(
    project: Project,
    config: LabelConfig,
    items: Iterator[Any],
    *,
    insert: bool,
    max_tasks: int,
    progress: Callable[[int], None] | None = None,
) -> Stored:
    """Validate ``items`` one by one and (``insert``) store them in chunks."""
    stored = Stored(start=_next_position(project.id))
    try:
        return _store(project, config, items, stored, insert, max_tasks, progress)
    except BaseException:
        if insert and stored.count:  # progress was announced: say it came to nothing
            events.progress(events.IMPORT_PROGRESS, project.id, state="failed", tasks=0)
        raise


def _store(
    project: Project,
    config: LabelConfig,
    items: Iterator[Any],
    stored: Stored,
    insert: bool,
    max_tasks: int,
    progress: Callable[[int], None] | None,
) -> Stored:
    if not insert:
        return _validate_and_store(project, config, items, stored, None, max_tasks, progress)
    if is_sqlite() and not SQLITE_WRITER_THREAD:
        writer = _Writer(project.id, None, database.connection())
        return _validate_and_store(project, config, items, stored, writer, max_tasks, progress)
    with ThreadPoolExecutor(1, thread_name_prefix="import-writer") as executor:
        writer = _Writer(project.id, executor, database.connection())
        try:
            return _validate_and_store(project, config, items, stored, writer, max_tasks, progress)
        finally:
            writer.drain()  # never leave a statement running when the transaction ends


def _validate_and_store(
    project: Project,
    config: LabelConfig,
    items: Iterator[Any],
    stored: Stored,
    writer: _Writer | None,
    max_tasks: int,
    progress: Callable[[int], None] | None,
) -> Stored:
    errors: list[str] = []
    pending: list[ValidTask] = []
    now = now_seconds()
    queued = [0]  # tasks handed to the writer
    first_id: list[int] = []  # SQLite: the id of the import's first task, read once

    def settle() -> None:
        """Wait for the writer's chunk; count its tasks (blocks, totals, progress)."""
        assert writer is not None
        done = writer.settle()
        if done is None:
            return
        chunk, keys = done
        stored.task_ids.extend(task_id for task_id, _ in keys)
        stored.unlabeled_ids.extend(task_id for task_id, at in keys if at is None)
        labeled = [(at, task_id) for task_id, at in keys if at is not None]
        stored.completed_at.extend(at for at, _ in labeled)
        stored.completed_ids.extend(task_id for _, task_id in labeled)
        add_counts(chunk.count, (chunk.labeled, len(chunk.completions), chunk.prediction_count))
        events.progress(events.IMPORT_PROGRESS, project.id, state="running", tasks=stored.count)
        if progress is not None:
            progress(stored.count)

    def add_counts(tasks: int, counts: tuple[int, int, int]) -> None:
        stored.labeled += counts[0]
        stored.completions += counts[1]
        stored.predictions += counts[2]
        stored.count += tasks

    def flush() -> None:
        if len(stored.head) < PREVIEW_SIZE:
            stored.head.extend(pending[: PREVIEW_SIZE - len(stored.head)])
        if writer is None:
            add_counts(len(pending), _count_children(pending))
            if progress is not None:
                progress(stored.count)
            return
        if not first_id and is_sqlite():  # before the writer's first chunk: connection free
            first_id.append(_next_task_id())
        ids_from = first_id[0] + queued[0] if first_id else None
        chunk = _chunk_rows(project.id, stored.start + queued[0], pending, now, ids_from)
        queued[0] += len(pending)
        settle()  # the previous chunk (written while this one was validated and converted)
        writer.submit(chunk, now)
        if writer.synchronous:
            settle()  # written already: its progress is told now, as it is stored

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
                if not errors and writer is not None:
                    settle()  # the chunk written meanwhile is told as stored, then the failure
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
    if pending or (progress is not None and writer is None):
        flush()
    if writer is not None:
        settle()
    if index == 0:
        raise data_is_empty()
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


def _completion_payload(completion: dict[str, Any], now: int) -> tuple[int, dict[str, Any]]:
    """(created_at, the stored payload: the completion without ``id`` and ``created_at``)."""
    created = completion.get("created_at")
    if not is_timestamp(created):
        created = now
    if "id" in completion or "created_at" in completion:
        completion = {k: v for k, v in completion.items() if k not in ("id", "created_at")}
    return created, completion


# A task's completions as rows still missing their task id: (created_at, cancelled, payload).
PartialCompletion = tuple[int, bool, str]


def _task_row(
    project_id: int, position: int, task: ValidTask, now: int, completions: list[PartialCompletion]
) -> tuple[Any, ...]:
    """The task's row; its completions' partial rows are appended to ``completions`` (each
    completion is converted once, for the task's counters and its own row)."""
    completed_at = None
    cancelled = 0
    for completion in task.completions:
        created, payload = _completion_payload(completion, now)
        completed_at = created if completed_at is None or created > completed_at else completed_at
        was_cancelled = is_cancelled(payload)
        cancelled += was_cancelled
        completions.append((created, was_cancelled, dump_json(payload)))
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
        mean_score(task.predictions) if task.predictions else None,
    )


@dataclass
class _Chunk:
    """A chunk's rows as the writer thread inserts them: the tasks' rows complete, their
    children's rows still missing the task id (``owners``: the task's index in the chunk)."""

    start: int  # position of the chunk's first task
    count: int
    task_runs: list[tuple[list[str], list[tuple[Any, ...]]]]  # (columns, rows), in order
    completions: list[PartialCompletion] = field(default_factory=list)
    completion_owners: list[int] = field(default_factory=list)
    labels: list[tuple[int, str, str]] = field(default_factory=list)  # (owner, control, label)
    predictions: list[tuple[int, list[dict[str, Any]]]] = field(default_factory=list)
    texts: list[str] | None = None  # SQLite: the search text of each task
    keys: list[tuple[int, int | None]] | None = None  # SQLite: (id, completed_at) of each task
    labeled: int = 0
    prediction_count: int = 0


def _chunk_rows(
    project_id: int, position: int, chunk: list[ValidTask], now: int, ids_from: int | None
) -> _Chunk:
    """Convert a chunk of valid tasks at ``position``… into rows (the caller's thread: no SQL).
    A chunk of plain tasks uses the short column list; any other chunk the full one for every
    task (a plain task's row then spells out the defaults): one run of rows per chunk, not a
    run per stretch of plain tasks (with every 10th task predicted that was ~1,000 statements
    or ``COPY``s per chunk of 5,000 instead of ~20 or 1). The counters are computed here.
    ``ids_from`` (SQLite): the tasks get the ids ``ids_from``… in order, given in their rows,
    and the chunk carries their keys, so the writer need not read them back."""
    result = _Chunk(start=position, count=len(chunk), task_runs=[])
    full = any(task.completions or task.predictions or task.meta is not None for task in chunk)
    run: list[tuple[Any, ...]] = []
    completions = result.completions
    for index, task in enumerate(chunk):
        if not full:
            run.append((project_id, position, dump_json(task.data), now, now))
        elif not (task.completions or task.predictions or task.meta is not None):
            data = dump_json(task.data)
            run.append((project_id, position, data, None, now, now, 0, 0, 0, False, None, None))
        else:
            if task.completions:
                result.labeled += 1
                result.completion_owners.extend([index] * len(task.completions))
                pairs: set[tuple[str, str]] = set()
                for completion in task.completions:
                    pairs |= labels.labels_of(completion)
                result.labels.extend((index, control, label) for control, label in sorted(pairs))
            if task.predictions:
                result.prediction_count += len(task.predictions)
                result.predictions.append((index, task.predictions))
            run.append(_task_row(project_id, position, task, now, completions))
        position += 1
    columns = TASK_COLUMNS if full else PLAIN_TASK_COLUMNS
    if run and ids_from is not None:
        completed = COMPLETED_AT if full else None
        result.keys = [
            (task_id, None if completed is None else row[completed])
            for task_id, row in enumerate(run, ids_from)
        ]
        run = [(task_id, *row) for task_id, row in enumerate(run, ids_from)]
        columns = ["id", *columns]
    if run:
        result.task_runs.append((columns, run))
    if is_sqlite():
        result.texts = [search.text_of(task.data) for task in chunk]
    return result


class _Writer:
    """Inserts an import's chunks on the import's own connection, from one background thread
    (``executor``) while the caller's thread validates and converts the next chunk: the
    database's work on a chunk (PostgreSQL's ``COPY``, SQLite's statements; most of an
    import) overlaps the Python work instead of following it, and the thread itself holds
    the GIL only to hand over the rows. One chunk is written at a time and the caller touches
    the connection only between chunks (:meth:`settle` first), so the transaction sees the
    same statements in the same order as before.

    With ``executor`` None the caller's thread writes each chunk at once (:meth:`submit`
    returns when it is stored). SQLite used to write that way: with 250 rows per statement the
    writer thread needed the GIL back after each of ~80 statements a chunk, waiting up to the
    switch interval (5 ms) each time while the caller converted, and it measured slower (CPU
    2.28 s against 2.14 s for 100k tasks with a completion each). With ``WRITER_ROWS`` per
    statement (~6 a chunk) the thread costs no CPU more (0.80 s caller + 1.18 s writer
    against 1.97 s in one thread, 2026-12-01, load average 13) and the writer's 1.2 s run
    beside the caller's 0.8 s when a second core is free."""

    def __init__(
        self, project_id: int, executor: ThreadPoolExecutor | None, connection: Any
    ) -> None:
        self._project_id = project_id
        self._executor = executor
        self._connection = connection
        self._running: tuple[_Chunk, Future[list[tuple[int, int | None]]]] | None = None

    @property
    def synchronous(self) -> bool:
        """Whether :meth:`submit` writes the chunk before it returns (SQLite)."""
        return self._executor is None

    def submit(self, chunk: _Chunk, now: int) -> None:
        assert self._running is None
        args = (self._connection, self._project_id, chunk, now)
        if self._executor is None:
            future: Future[list[tuple[int, int | None]]] = Future()
            future.set_result(_write_chunk(*args))
        else:
            future = self._executor.submit(_write_chunk, *args)
        self._running = (chunk, future)

    def settle(self) -> tuple[_Chunk, list[tuple[int, int | None]]] | None:
        """The written chunk with its tasks' keys (id, completed_at); None if none runs."""
        if self._running is None:
            return None
        chunk, future = self._running
        self._running = None
        return chunk, future.result()

    def drain(self) -> None:
        """Wait for a running chunk whatever it raised (the transaction is failing)."""
        if self._running is not None:
            _, future = self._running
            self._running = None
            with contextlib.suppress(BaseException):
                future.result()


def _write_chunk(
    connection: Any, project_id: int, chunk: _Chunk, now: int
) -> list[tuple[int, int | None]]:
    """Insert a chunk's tasks in order, read their keys, then their children (the writer
    thread, through raw cursors of the import's connection); returns the keys."""
    cursor = connection.cursor()
    per = WRITER_ROWS
    for columns, run in chunk.task_runs:
        insert_rows(Task, columns, run, cursor, per)
    keys = chunk.keys
    if keys is None:
        keys = _keys_between(cursor, project_id, chunk.start, chunk.start + chunk.count)
    task_ids = [task_id for task_id, _ in keys]
    if chunk.texts is not None:
        search.index_texts(cursor, list(zip(task_ids, chunk.texts, strict=True)), per)
    if chunk.completions:
        completion_rows = [
            (project_id, task_ids[owner], created, now, cancelled, payload)
            for owner, (created, cancelled, payload) in zip(
                chunk.completion_owners, chunk.completions, strict=True
            )
        ]
        insert_rows(Completion, COMPLETION_COLUMNS, completion_rows, cursor, per)
    if chunk.labels:
        label_rows = [
            (project_id, task_ids[owner], control, label) for owner, control, label in chunk.labels
        ]
        insert_rows(TaskLabel, labels.COLUMNS, label_rows, cursor, per)
    if chunk.predictions:
        prediction_values: list[tuple[Any, ...]] = []
        for owner, predictions in chunk.predictions:
            prediction_values.extend(prediction_rows(project_id, task_ids[owner], predictions, now))
        insert_rows(Prediction, PREDICTION_COLUMNS, prediction_values, cursor, per)
    return keys


def _next_position(project_id: int) -> int:
    """Positions only grow (deletions leave gaps), so new tasks go after the highest."""
    highest = Task.select(peewee.fn.MAX(Task.position)).where(Task.project == project_id)
    value = highest.scalar()
    return 0 if value is None else int(value) + 1


def _next_task_id() -> int:
    """SQLite: the id the table's next task would get. Ids are ``AUTOINCREMENT``: above the
    highest id the table ever held (``sqlite_sequence``, which an insert of a higher explicit
    id raises), not only the highest id it holds now. The import holds SQLite's write lock
    for its whole transaction, so no other writer takes ids meanwhile."""
    sql = (
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), "
        f'coalesce((SELECT max(id) FROM "{Task._meta.table_name}"), 0))'
    )
    return int(database.execute_sql(sql, (Task._meta.table_name,)).fetchone()[0]) + 1


def _keys_between(
    cursor: Any, project_id: int, start: int, stop: int
) -> list[tuple[int, int | None]]:
    """(id, completed_at) of the tasks at positions start..stop-1, in order."""
    query = Task.select(Task.id, Task.completed_at).where(
        Task.project == project_id, Task.position >= start, Task.position < stop
    )
    sql, params = query.order_by(Task.position).sql()
    cursor.execute(sql, params)
    return [(r[0], r[1]) for r in cursor.fetchall()]


def finish(project: Project, stored: Stored) -> ImportResult:
    """Count the new tasks in the rank blocks and update the project's counters; the result
    with the new ids and the preview.

    The blocks are counted last, under their lock taken exclusively: on PostgreSQL the
    project's per-task writers (annotators' completions) go on beside an import until here
    (:func:`server.services.projects.lock_project_for_import`), then wait for the commit;
    block rows the import wrote earlier would have held them all the while (and a fold of
    theirs waiting on such a row while the import waits for their shared lock would
    deadlock)."""
    if stored.task_ids:
        rank_blocks.lock(project.id)
        rank_blocks.count_import(
            project.id,
            stored.task_ids,
            stored.unlabeled_ids,
            (stored.completed_at, stored.completed_ids),
        )
    Project.update(
        task_count=Project.task_count + stored.count,
        labeled_task_count=Project.labeled_task_count + stored.labeled,
        completion_count=Project.completion_count + stored.completions,
        prediction_count=Project.prediction_count + stored.predictions,
        updated_at=now_seconds(),
    ).where(Project.id == project.id).execute()
    task_ids = stored.task_ids  # read back with each chunk's keys
    if task_ids:
        events.add(events.bulk(events.TASK_CREATED, project.id, task_ids))
        events.emit(events.PROJECT_UPDATED, project.id, reason="counters")
        events.emit(
            events.IMPORT_PROGRESS,
            project.id,
            state="done",
            tasks=stored.count,
            completions=stored.completions,
            predictions=stored.predictions,
        )
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


def transaction(write: bool) -> contextlib.AbstractContextManager[Any]:
    """A write transaction, or a plain one for a dry run (no write lock held)."""
    return write_transaction() if write else database.atomic()


def dry_result(project: Project, stored: Stored) -> ImportResult:
    return ImportResult(
        task_ids=[],
        completion_count=stored.completions,
        prediction_count=stored.predictions,
        preview=_preview(stored.head, None),
        duration=0.0,
        project_name=project.name,
        total_tasks=stored.count,
    )
