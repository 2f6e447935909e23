"""Storage sync: source storages feed tasks, target storages get completions documents, and
``s3://`` task data is served as presigned URLs (rest-api.md §9.3).

* **Source sync** (``s3``, ``redis``): list the objects (S3: under ``prefix``, one level, keys
  matching ``regex`` from their start, none when ``regex`` is empty, as Label Studio; Redis:
  every key ``<path>/*``), then import the objects not seen before, in chunks, each chunk in one
  transaction with the keys it came from (:class:`~server.models.StorageKey`), so a key becomes
  one task once, also when syncs race. S3 objects become ``{"<data_key>": "s3://bucket/key"}``
  tasks (``use_blob_urls``, the default) or are read as one JSON task each; Redis values are
  JSON tasks. Objects that are not valid tasks are skipped and named in ``last_error``.
* **Target writes** (``completions-dir``, ``s3-completions``, ``redis-completions``): for the
  tasks given (or all), the completions document of each labeled task (export-formats.md §1.1)
  is written when it differs from what was last written (a digest per key), and the object of
  a task that lost its completions (or was deleted) is removed. S3 targets also keep a local
  copy in ``<project>/completions/`` when ``create_local_copy`` is set.

A sync holds its storage through a lease (``Storage.syncing``), which is also what
``source_syncing``/``target_syncing`` report. Network calls happen outside transactions and
without a database connection held: read, call, write.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import peewee

from server.db import with_connection, write_transaction
from server.errors import DomainError
from server.ls_json import completion_json
from server.models import Completion, Project, Storage, StorageKey, Task, now_seconds
from server.services.config.model import UNDEFINED_KEY, LabelConfig
from server.services.imports.json_import import import_tasks
from server.services.imports.validation import ItemError, rename_undefined, validate_item
from server.services.projects import get_project, lock_project, parsed_config
from server.services.storage.backends import (
    ClientCache,
    LocalDir,
    RedisStore,
    S3Store,
    StorageFailure,
    StorageSpec,
    client_for,
    completions_dir,
    json_document,
)
from server.services.storage.config import (
    S3_TYPES,
    SOURCE,
    SYNC_LEASE,
    SYNCED_SOURCES,
    TARGET,
    summary,
)
from server.settings import Settings

log = logging.getLogger(__name__)
UNEXPECTED = "Unexpected error; see the server log"
SOURCE_CHUNK = 200
TARGET_PAGE = 500
MAX_PROBLEMS = 5
S3_URI = re.compile(r"s3://([^/\s\"'<>]+)/([^\s\"'<>]+)")


@dataclass(frozen=True)
class SyncEnv:
    """What syncs need besides the database: settings and the process's client cache."""

    settings: Settings
    clients: ClientCache | None = None

    def project_dir(self, project: Project) -> str:
        return self.settings.for_project(project.name).project_dir


def spec_of(row: Storage, project_dir: str) -> StorageSpec:
    params = dict(row.params or {})
    settings = orjson.dumps([row.type, row.path, params], option=orjson.OPT_SORT_KEYS)
    return StorageSpec(
        type=row.type,
        path=row.path,
        params=params,
        project_dir=project_dir,
        version=(row.id, hashlib.sha256(settings).hexdigest()),
    )


def check_connection(spec: StorageSpec, settings: Settings) -> None:
    """Ask a storage whether it answers (S3: the bucket exists; Redis: PING): the check of
    ``POST /api/project/storage-settings``. Local types need none."""
    if spec.type in S3_TYPES or spec.type in ("redis", "redis-completions"):
        store = client_for(spec, settings, None)
        try:
            store.check()
        finally:
            if isinstance(store, RedisStore):
                store.close()


# --- the lease -----------------------------------------------------------------------------


def claim(project_id: int, role: str) -> tuple[Storage | None, bool]:
    """Take the project's storage for a sync: (row, False) when taken; (None, True) when
    another sync holds it; (None, False) when there is no such storage."""
    row = Storage.get_or_none(Storage.project == project_id, Storage.role == role)
    if row is None:
        return None, False
    now = now_seconds()
    with write_transaction():
        free = (Storage.syncing == False) | (Storage.sync_started_at <= now - SYNC_LEASE)  # noqa: E712
        taken = (
            Storage.update(syncing=True, sync_started_at=now)
            .where(Storage.id == row.id, free)
            .execute()
        )
        if not taken:
            return None, Storage.get_or_none(Storage.id == row.id) is not None
        return Storage.get_by_id(row.id), False


def release(storage_id: int, error: str | None, *, synced: bool) -> None:
    now = now_seconds()
    values: dict[Any, Any] = {Storage.syncing: False}
    if synced:
        values[Storage.synced_at] = now
    values[Storage.last_error] = None if error is None else error[:2000]
    values[Storage.error_at] = None if error is None else now
    with write_transaction():
        Storage.update(values).where(Storage.id == storage_id).execute()


def _problems(problems: list[str]) -> str | None:
    if not problems:
        return None
    shown = "; ".join(problems[:MAX_PROBLEMS])
    more = len(problems) - MAX_PROBLEMS
    return f"{len(problems)} objects skipped: {shown}" + (f"; and {more} more" if more > 0 else "")


# --- source sync ---------------------------------------------------------------------------


@dataclass
class SourcePlan:
    spec: StorageSpec
    config: LabelConfig
    known: set[str]


def _source_plan(project_id: int, row: Storage, env: SyncEnv) -> SourcePlan:
    project = get_project(project_id)
    known = {
        r[0]
        for r in StorageKey.select(StorageKey.key)
        .where(StorageKey.project == project_id, StorageKey.role == SOURCE)
        .tuples()
    }
    return SourcePlan(spec_of(row, env.project_dir(project)), parsed_config(project), known)


def _listing(store: S3Store | RedisStore, spec: StorageSpec) -> Iterator[str]:
    if isinstance(store, RedisStore):
        yield from store.list_keys()
        return
    regex = spec.params.get("regex") or ""
    if not regex:
        return  # Label Studio: "If not specified, all files will be skipped"
    pattern = re.compile(regex)
    for key in store.list_keys():
        if not key.endswith("/") and pattern.match(key):
            yield key


def _task_item(
    store: S3Store | RedisStore, spec: StorageSpec, key: str, config: LabelConfig
) -> dict[str, Any]:
    """The task an object makes (validated); ItemError when it is not one."""
    if isinstance(store, S3Store) and spec.params.get("use_blob_urls", True) is not False:
        data_key = spec.params.get("data_key") or UNDEFINED_KEY
        item: Any = {"data": {data_key: store.uri(key)}}
    else:
        try:
            item = orjson.loads(store.read(key))
        except orjson.JSONDecodeError as exc:
            raise ItemError(f"not a JSON task: {exc}") from None
        if isinstance(item, list):
            if len(item) != 1:
                raise ItemError("an object must hold one task (an object or a one-item list)")
            item = item[0]
    validate_item(item, config)
    return item  # type: ignore[no-any-return]


def _store_tasks(project_id: int, items: list[tuple[str, dict[str, Any]]]) -> int:
    """Import the objects' tasks and remember their keys, in one transaction; keys another
    sync stored meanwhile are left out."""
    with write_transaction():
        lock_project(project_id)
        uris = [uri for uri, _ in items]
        known = {
            r[0]
            for r in StorageKey.select(StorageKey.key)
            .where(
                StorageKey.project == project_id,
                StorageKey.role == SOURCE,
                StorageKey.key.in_(uris),
            )
            .tuples()
        }
        fresh = [(uri, item) for uri, item in dict(items).items() if uri not in known]
        if not fresh:
            return 0
        result = import_tasks(project_id, [item for _, item in fresh])
        rows = [
            {"project": project_id, "role": SOURCE, "key": uri, "task": task_id}
            for (uri, _), task_id in zip(fresh, result.task_ids, strict=True)
        ]
        StorageKey.insert_many(rows).execute()
        return len(fresh)


@dataclass
class SyncOutcome:
    status: str  # done, failed, busy, none
    added: int = 0
    error: str | None = None


def sync_source(
    project_id: int, env: SyncEnv, stopping: threading.Event | None = None
) -> SyncOutcome:
    """Sync a project's S3 or Redis source once (see the module doc)."""
    row, busy = with_connection(claim, project_id, SOURCE)
    if busy:
        return SyncOutcome("busy")
    if row is None:
        return SyncOutcome("none")
    added, problems, failure = 0, [], None
    try:
        if row.type in SYNCED_SOURCES:
            plan = with_connection(_source_plan, project_id, row, env)
            store = client_for(plan.spec, env.settings, env.clients)
            fresh = [k for k in _listing(store, plan.spec) if store.uri(k) not in plan.known]
            for start in range(0, len(fresh), SOURCE_CHUNK):
                if stopping is not None and stopping.is_set():
                    break
                items = []
                for key in fresh[start : start + SOURCE_CHUNK]:
                    try:
                        items.append(
                            (store.uri(key), _task_item(store, plan.spec, key, plan.config))
                        )
                    except ItemError as exc:
                        problems.append(f"{key} :: {exc}")
                    except StorageFailure as exc:
                        problems.append(f"{key} :: {exc.message}")
                if items:
                    try:
                        added += with_connection(_store_tasks, project_id, items)
                    except DomainError as exc:
                        problems.append(f"{items[0][0]}…: {exc.message}")
    except StorageFailure as exc:
        failure = exc.message
    except Exception:
        log.exception("syncing the source of project %d failed", project_id)
        failure = UNEXPECTED
    finally:
        error = failure or _problems(problems)
        with_connection(release, row.id, error, synced=failure is None)
    if failure is not None:
        return SyncOutcome("failed", added, failure)
    return SyncOutcome("done", added, error)


# --- target writes -------------------------------------------------------------------------


@dataclass
class TargetPlan:
    spec: StorageSpec
    config: LabelConfig
    project_dir: str


def _target_plan(project_id: int, row: Storage, env: SyncEnv) -> TargetPlan:
    project = get_project(project_id)
    project_dir = env.project_dir(project)
    return TargetPlan(spec_of(row, project_dir), parsed_config(project), project_dir)


class TargetWriter:
    """Writes documents to a target (and its local copy); keys are ``target_key(task id)``."""

    def __init__(self, plan: TargetPlan, env: SyncEnv) -> None:
        local = LocalDir(completions_dir(plan.project_dir))
        self.remote: S3Store | RedisStore | None = None
        self.local: LocalDir | None = None
        if plan.spec.type == "completions-dir":
            self.local = local
        else:
            self.remote = client_for(plan.spec, env.settings, env.clients)
            if plan.spec.type in S3_TYPES and plan.spec.params.get("create_local_copy", True):
                self.local = local

    def key(self, task_id: int) -> str:
        if self.remote is not None:
            return self.remote.target_key(task_id)
        return LocalDir.target_key(task_id)

    def put(self, task_id: int, body: bytes) -> None:
        if self.remote is not None:
            self.remote.put(self.key(task_id), body)
        if self.local is not None:
            self.local.put(LocalDir.target_key(task_id), body)

    def delete(self, key: str) -> None:
        if self.remote is not None:
            self.remote.delete(key)
        task_id = _task_id_of(key)
        if self.local is not None and task_id is not None:
            self.local.delete(LocalDir.target_key(task_id))


def _task_id_of(key: str) -> int | None:
    found = re.search(r"(\d+)(?:\.json)?$", key)
    return int(found.group(1)) if found else None


@dataclass
class Written:
    puts: dict[str, tuple[int, str]]  # key -> (task id, digest)
    deletes: list[str]


def _documents(
    project_id: int, task_ids: list[int], keys: dict[int, str], config: LabelConfig
) -> tuple[dict[int, bytes], dict[str, str | None]]:
    """The documents of the labeled tasks among ``task_ids`` and what was recorded for their
    keys (key -> digest)."""
    tasks = list(
        Task.select(Task.id, Task.data, Task.meta)
        .where(Task.project == project_id, Task.id.in_(task_ids), Task.total_completions > 0)
        .order_by(Task.id)
    )
    by_task: dict[int, list[dict[str, Any]]] = {t.id: [] for t in tasks}
    if by_task:
        query = (
            Completion.select().where(Completion.task.in_(list(by_task))).order_by(Completion.id)
        )
        for completion in query:
            by_task[completion.task_id].append(completion_json(completion))
    documents = {}
    for task in tasks:
        if not by_task[task.id]:
            continue
        data = task.data
        if isinstance(data, dict) and UNDEFINED_KEY in data:
            data = rename_undefined(data, config)
        document: dict[str, Any] = {"completions": by_task[task.id], "data": data, "id": task.id}
        if task.meta is not None:
            document["meta"] = task.meta
        documents[task.id] = json_document(document)
    recorded = {
        r[0]: r[1]
        for r in StorageKey.select(StorageKey.key, StorageKey.digest)
        .where(
            StorageKey.project == project_id,
            StorageKey.role == TARGET,
            StorageKey.key.in_(list(keys.values())),
        )
        .tuples()
    }
    return documents, recorded


def _record(project_id: int, written: Written, version: tuple[object, ...]) -> None:
    """Remember what was written, unless the target was changed meanwhile (its keys were
    forgotten then, and must stay so for the new target to be written in full)."""
    if not written.puts and not written.deletes:
        return
    with write_transaction():
        row = Storage.get_or_none(Storage.project == project_id, Storage.role == TARGET)
        if row is None or spec_of(row, "").version != version:
            return
        keys = list(written.puts) + written.deletes
        StorageKey.delete().where(
            StorageKey.project == project_id,
            StorageKey.role == TARGET,
            StorageKey.key.in_(keys),
        ).execute()
        ids = [task_id for task_id, _ in written.puts.values()]
        alive = (
            {r[0] for r in Task.select(Task.id).where(Task.id.in_(ids)).tuples()} if ids else set()
        )
        rows = [
            {
                "project": project_id,
                "role": TARGET,
                "key": key,
                "task": task_id if task_id in alive else None,
                "digest": digest,
            }
            for key, (task_id, digest) in written.puts.items()
        ]
        if rows:
            StorageKey.insert_many(rows).execute()


def _labeled_pages(project_id: int) -> Iterator[list[int]]:
    last = 0
    while True:
        ids = with_connection(
            lambda after: [
                r[0]
                for r in Task.select(Task.id)
                .where(Task.project == project_id, Task.id > after, Task.total_completions > 0)
                .order_by(Task.id)
                .limit(TARGET_PAGE)
                .tuples()
            ],
            last,
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


def _orphans(project_id: int) -> list[str]:
    """Target keys whose task is gone or has no completions any more."""
    query = (
        StorageKey.select(StorageKey.key)
        .join(Task, peewee.JOIN.LEFT_OUTER, on=(StorageKey.task == Task.id))
        .where(
            StorageKey.project == project_id,
            StorageKey.role == TARGET,
            Task.id.is_null() | (Task.total_completions == 0),
        )
    )
    return [r[0] for r in query.tuples()]


def _write_page(
    writer: TargetWriter, task_ids: list[int], plan: TargetPlan, project_id: int
) -> StorageFailure | None:
    keys = {task_id: writer.key(task_id) for task_id in task_ids}
    documents, recorded = with_connection(_documents, project_id, task_ids, keys, plan.config)
    written = Written({}, [])
    failure = None
    try:
        for task_id in task_ids:
            key = keys[task_id]
            body = documents.get(task_id)
            if body is not None:
                digest = hashlib.sha256(body).hexdigest()
                if recorded.get(key) != digest:
                    writer.put(task_id, body)
                    written.puts[key] = (task_id, digest)
            elif key in recorded:
                writer.delete(key)
                written.deletes.append(key)
    except StorageFailure as exc:
        failure = exc
    with_connection(_record, project_id, written, plan.spec.version)
    return failure


def write_target(
    project_id: int,
    task_ids: list[int] | None,
    env: SyncEnv,
    stopping: threading.Event | None = None,
) -> SyncOutcome:
    """Bring the target up to date for ``task_ids`` (None: every task, and remove objects of
    tasks that lost their completions)."""
    row, busy = with_connection(claim, project_id, TARGET)
    if busy:
        return SyncOutcome("busy")
    if row is None:
        return SyncOutcome("none")
    failure: str | None = None
    try:
        plan = with_connection(_target_plan, project_id, row, env)
        writer = TargetWriter(plan, env)
        pages: Iterator[list[int]]
        if task_ids is None:
            pages = _labeled_pages(project_id)
        else:
            ordered = sorted(set(task_ids))
            pages = iter(
                [ordered[i : i + TARGET_PAGE] for i in range(0, len(ordered), TARGET_PAGE)]
            )
        for page in pages:
            if stopping is not None and stopping.is_set():
                failure = "stopped before all completions were written"
                break
            error = _write_page(writer, page, plan, project_id)
            if error is not None:
                failure = error.message
                break
        if failure is None and task_ids is None:
            written = Written({}, [])
            try:
                for key in with_connection(_orphans, project_id):
                    writer.delete(key)
                    written.deletes.append(key)
            except StorageFailure as exc:
                failure = exc.message
            with_connection(_record, project_id, written, plan.spec.version)
    except StorageFailure as exc:
        failure = exc.message
    except Exception:
        log.exception("writing the target of project %d failed", project_id)
        failure = UNEXPECTED
    finally:
        with_connection(release, row.id, failure, synced=failure is None)
    return SyncOutcome("failed" if failure else "done", error=failure)


# --- serving s3:// data ----------------------------------------------------------------------


def has_s3_uri(data: Any) -> bool:
    return isinstance(data, dict) and any(
        isinstance(v, str) and "s3://" in v for v in data.values()
    )


class DataResolver:
    """Replaces ``s3://bucket/key`` in top-level string values of task data (whole values
    and URIs inside longer text) with presigned GET URLs; values it cannot sign stay."""

    def __init__(self, store: S3Store) -> None:
        self.store = store

    def _sign(self, match: re.Match[str]) -> str:
        try:
            return self.store.presign(match.group(1), match.group(2))
        except Exception:  # no credentials and the like: serve the URI as stored
            return match.group(0)

    def __call__(self, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = None
        for key, value in data.items():
            if isinstance(value, str) and "s3://" in value:
                signed = S3_URI.sub(self._sign, value)
                if signed != value:
                    out = dict(data) if out is None else out
                    out[key] = signed
        return data if out is None else out


def needs_resolver(project: Project) -> bool:
    kinds = summary(project)
    return kinds.get(SOURCE) == "s3" or kinds.get(TARGET) == "s3-completions"


def data_resolver(
    project: Project, rows: dict[str, Storage], settings: Settings, clients: ClientCache | None
) -> DataResolver | None:
    """The presigner for a project's ``s3://`` data: its S3 source, else its S3 target; None
    when it has neither or ``presign`` is false."""
    row = rows.get(SOURCE)
    if row is None or row.type != "s3":
        row = rows.get(TARGET)
        if row is None or row.type != "s3-completions":
            return None
    spec = spec_of(row, settings.for_project(project.name).project_dir)
    try:
        store = client_for(spec, settings, clients)
    except StorageFailure:
        return None
    if not isinstance(store, S3Store) or not store.presign_enabled:
        return None
    return DataResolver(store)
