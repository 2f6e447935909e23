"""Target writes (``completions-dir``, ``s3-completions``, ``gcs-completions``,
``azure-blob-completions``, ``redis-completions``; rest-api.md §9.3): completions documents ->
storage objects.

For the tasks given (or all), the completions document of each labeled task
(export-formats.md §1.1) is written when it differs from what was last written (a digest per
key), and the object of a task that lost its completions (or was deleted) is removed. Cloud
targets also keep a local copy in ``<project>/completions/`` when ``create_local_copy`` is set.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import peewee

from server.db import with_connection, write_transaction
from server.ls_json import completion_json
from server.models import Completion, Storage, StorageKey, Task
from server.services.config.model import UNDEFINED_KEY, LabelConfig
from server.services.imports.validation import rename_undefined
from server.services.projects import get_project, parsed_config
from server.services.storage.backends import (
    LocalDir,
    StorageFailure,
    StorageSpec,
    Store,
    client_for,
    completions_dir,
    json_document,
)
from server.services.storage.storage_types import CLOUD_TARGETS, TARGET
from server.services.storage.sync_env import (
    LEASE_LOST,
    UNEXPECTED,
    LeaseLost,
    SyncEnv,
    SyncOutcome,
    claim,
    release,
    renew,
    spec_of,
)

log = logging.getLogger(__name__)
TARGET_PAGE = 500


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
        self.remote: Store | None = None
        self.local: LocalDir | None = None
        if plan.spec.type == "completions-dir":
            self.local = local
        else:
            self.remote = client_for(plan.spec, env.settings, env.clients)
            if plan.spec.type in CLOUD_TARGETS and plan.spec.params.get("create_local_copy", True):
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
        .iterator()
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
        alive = set(Task.select(Task.id).where(Task.id.in_(ids)).scalars()) if ids else set()
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
                .iterator()
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
    return list(query.scalars())


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
            with_connection(renew, row)
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
    except LeaseLost:
        log.warning("project %d: %s", project_id, LEASE_LOST)
        failure = LEASE_LOST
    except Exception:
        log.exception("writing the target of project %d failed", project_id)
        failure = UNEXPECTED
    finally:
        with_connection(release, row, failure, synced=failure is None)
    return SyncOutcome("failed" if failure else "done", error=failure)
