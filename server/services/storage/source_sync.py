"""Source sync (``s3``, ``gcs``, ``azure-blob``, ``redis``; rest-api.md §9.3): storage objects
-> tasks.

List the objects (cloud stores: under ``prefix`` (S3: one level; GCS, Azure: every depth, as
Label Studio), keys matching ``regex`` from their start (RE2, linear time), none when ``regex``
is empty, as Label Studio; Redis: every key ``<path>/*``), then import the objects not seen
before, in chunks, each chunk in one transaction with the keys it came from
(:class:`~server.models.StorageKey`), so a key becomes one task once, also when syncs race.
Cloud objects become ``{"<data_key>": "s3://bucket/key"}`` tasks (``gs://``,
``azure-blob://``; ``use_blob_urls``, the default) or are read as one JSON task each; Redis
values are JSON tasks. Objects that are not valid tasks are skipped and named in
``last_error``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from server.db import with_connection, write_transaction
from server.errors import DomainError
from server.json_values import loads_storable
from server.models import Storage, StorageKey
from server.services.config.model import UNDEFINED_KEY, LabelConfig
from server.services.imports.json_import import import_tasks
from server.services.imports.validation import ItemError, validate_item
from server.services.projects import get_project, lock_project, parsed_config
from server.services.storage.backends import (
    RedisStore,
    StorageFailure,
    StorageSpec,
    Store,
    client_for,
)
from server.services.storage.key_filter import compile_key_regex
from server.services.storage.storage_types import CLOUD_SOURCES, SOURCE, SYNCED_SOURCES
from server.services.storage.sync_env import (
    LEASE_LOST,
    UNEXPECTED,
    LeaseLost,
    SyncEnv,
    SyncOutcome,
    claim,
    problems_summary,
    release,
    renew,
    spec_of,
)

log = logging.getLogger(__name__)
SOURCE_CHUNK = 200


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
        .iterator()
    }
    return SourcePlan(spec_of(row, env.project_dir(project)), parsed_config(project), known)


def _listing(store: Store, spec: StorageSpec) -> Iterator[str]:
    if isinstance(store, RedisStore):
        yield from store.list_keys()
        return
    regex = spec.params.get("regex") or ""
    if not regex:
        return  # Label Studio: "If not specified, all files will be skipped"
    try:
        pattern = compile_key_regex(regex)
    except ValueError as exc:  # stored before RE2 was used: a pattern it cannot run
        raise StorageFailure(f"regex: {exc}") from None
    for key in store.list_keys():
        if not key.endswith("/") and pattern.match(key):
            yield key


def _task_item(store: Store, spec: StorageSpec, key: str, config: LabelConfig) -> dict[str, Any]:
    """The task an object makes (validated); ItemError when it is not one."""
    if spec.type in CLOUD_SOURCES and spec.params.get("use_blob_urls", True) is not False:
        data_key = spec.params.get("data_key") or UNDEFINED_KEY
        item: Any = {"data": {data_key: store.uri(key)}}
    else:
        # read as an import's JSON body is (server.json_values): integers beyond 64 bits kept
        # (orjson would make floats of them), NaN and lone surrogates refused
        try:
            item = loads_storable(store.read(key))
        except ValueError as exc:  # not JSON (or not UTF-8)
            raise ItemError(f"not a JSON task: {exc}") from None
        except DomainError as exc:
            raise ItemError(exc.message) from None
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
            .iterator()
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


def sync_source(
    project_id: int, env: SyncEnv, stopping: threading.Event | None = None
) -> SyncOutcome:
    """Sync a project's cloud or Redis source once (see the module doc)."""
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
                with_connection(renew, row)
    except StorageFailure as exc:
        failure = exc.message
    except LeaseLost:
        log.warning("project %d: %s", project_id, LEASE_LOST)
        failure = LEASE_LOST
    except Exception:
        log.exception("syncing the source of project %d failed", project_id)
        failure = UNEXPECTED
    finally:
        error = failure or problems_summary(problems)
        with_connection(release, row, error, synced=failure is None)
    if failure is not None:
        return SyncOutcome("failed", added, failure)
    return SyncOutcome("done", added, error)
