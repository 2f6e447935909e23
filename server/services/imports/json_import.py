"""Task import from JSON bodies (rest-api.md §6): in memory or spooled, direct or staged."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.db import write_transaction
from server.errors import DomainError
from server.gc_pause import paused_gc
from server.json_depth import DEFAULT_MAX_JSON_DEPTH
from server.models import dump_json
from server.services.imports.pipeline import data_is_empty, dry_result, finish, store, transaction
from server.services.imports.readers import (
    json_items,
    json_start,
)
from server.services.imports.report import ImportResult
from server.services.imports.staging_dir import (
    FileError,
    ImportLimits,
    Staging,
    new_staging,
)
from server.services.projects import get_project, lock_project_for_import, parsed_config


@dataclass(frozen=True)
class SpooledJSON:
    """A large JSON request body that the REST facade wrote to a file instead of parsing it:
    its tasks are read incrementally, so memory stays bounded whatever the body's size."""

    path: Path


def _spooled_items(body: SpooledJSON, max_json_depth: int) -> Iterator[Any]:
    """The items of a spooled body, with the answers an in-memory body gets."""
    with body.path.open("rb") as handle:
        first = json_start(handle)
        if not first:
            raise data_is_empty()
        if first not in (b"[", b"{"):
            message = "Incorrect input data type, it must be JSON dict or list"
            raise DomainError("invalid_tasks", message, {"errors": [message]})
        try:
            yield from json_items(handle, "request body", False, max_json_depth)
        except FileError as exc:
            message = "Malformed JSON body: " + exc.message.split(": ", 1)[-1]
            raise DomainError("invalid", message, {"errors": [message]}) from None


def as_task_list(payload: Any, max_json_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Iterable[Any]:
    """A JSON body -> its items: a list as is, one object as a one-item list, a spooled body
    read incrementally."""
    if isinstance(payload, SpooledJSON):
        return _spooled_items(payload, max_json_depth)
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        if not payload:
            raise data_is_empty()
        return payload
    message = "Incorrect input data type, it must be JSON dict or list"
    raise DomainError("invalid_tasks", message, {"errors": [message]})


def import_tasks(
    project_id: int,
    items: Any,
    *,
    max_tasks: int = ImportLimits.max_tasks,
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> ImportResult:
    """Validate and store tasks (with their completions and predictions) atomically."""
    started = time.perf_counter()
    items = as_task_list(items, max_json_depth)
    with paused_gc(), write_transaction():
        project = lock_project_for_import(project_id)
        config = parsed_config(project)
        stored = store(project, config, iter(items), insert=True, max_tasks=max_tasks)
        result = finish(project, stored)
    result.duration = round(time.perf_counter() - started, 6)
    return result


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
    with paused_gc(), transaction(insert), staging.tasks_path.open("rb") as handle:
        project = lock_project_for_import(project_id) if insert else get_project(project_id)
        config = parsed_config(project)
        items = json_items(handle, "tasks.json", False, limits.max_json_depth)
        stored = store(project, config, items, insert=insert, max_tasks=limits.max_tasks)
        result = finish(project, stored) if insert else dry_result(project, stored)
    result.duration = round(time.perf_counter() - started, 6)
    return result
