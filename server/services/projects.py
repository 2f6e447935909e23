"""Projects: lookup, creation, settings, labeling config."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from server.db import (
    ADVISORY_PROJECT,
    ADVISORY_PROJECT_IMPORT,
    PreparedSelect,
    advisory_xact_lock,
    is_sqlite,
    write_transaction,
)
from server.errors import DomainError, not_found
from server.models import Project, now_seconds
from server.services import counters, events
from server.services.config import derived_schema, label_config, sample_tasks
from server.services.config.issues import (
    NOT_A_STRING,
    ORPHANED_CONTROL,
    ORPHANED_LABELS,
    ORPHANED_RESULTS,
    ConfigIssue,
    LabelConfigError,
)
from server.services.config.model import EMPTY_CONFIG, LabelConfig
from server.settings import SAMPLING_MODES

SAMPLING_ALIASES = {"random-uniform": "uniform"}

# Settings a client may change, with their types (compat Q-15).
_TEXT_SETTINGS = ("title", "description", "instruction")
_BOOL_SETTINGS = (
    "allow_delete_completions",
    "show_instruction",
    "show_skip_button",
    "enable_empty_completion",
    "show_project_links_in_multisession",
)


# Every GraphQL request reads its project, with its exact totals: the SQL is built once.
_BY_ID = PreparedSelect(
    Project,
    lambda project_id: (
        Project.select(*counters.with_totals()).where(Project.id == project_id).limit(1)
    ),
    1,
)


def get_project(project_id: int) -> Project:
    project = _BY_ID.first(project_id)
    if project is None:
        raise not_found("Project", project_id)
    return counters.selected(project)


def get_project_by_uuid(uuid: str) -> Project:
    project = Project.get_or_none(Project.uuid == uuid)
    if project is None:
        raise not_found("Project", uuid)
    return project


def list_projects() -> list[Project]:
    return list(Project.select().order_by(Project.id))


def lock_project(project_id: int) -> Project:
    """Read the project inside a write transaction, serialising writers of this project: the
    lock of bulk writers (bulk actions, deleting everything, storage syncs, prediction jobs)
    and of project settings; imports take :func:`lock_project_for_import`.

    SQLite's ``BEGIN IMMEDIATE`` already serialises all writers. PostgreSQL takes the project's
    advisory lock exclusively (per-task writers take it shared, :func:`share_project`, so this
    waits for them and they for it), then a row lock, ``FOR NO KEY UPDATE`` (what an
    ``UPDATE`` of the base counters takes): ``FOR UPDATE`` would also wait for the key-share
    locks of rows inserted with a foreign key to the project (a per-task writer's new
    completion).
    """
    advisory_xact_lock(ADVISORY_PROJECT, project_id)
    return _project_row_locked(project_id)


def _project_row_locked(project_id: int) -> Project:
    # With its totals as they stand now: the caller changes them, then may read the old ones.
    query = Project.select(*counters.with_totals()).where(Project.id == project_id)
    if not is_sqlite():
        query = query.for_update("FOR NO KEY UPDATE")  # type: ignore[arg-type]
    project: Project | None = query.first()
    if project is None:
        raise not_found("Project", project_id)
    return counters.selected(project)


def lock_project_for_import(project_id: int) -> Project:
    """:func:`lock_project` for an import: on PostgreSQL the project's per-task writers (an
    annotator's completion, a single deletion) go on beside it, where an import of a million
    tasks used to hold every one of them for its whole store phase (~40 s).

    It takes the project's lock *shared*, as per-task writers do, so every bulk writer
    (deleting all tasks, bulk actions, settings) still waits for it and it for them; then the
    project's import lock exclusively (one import of a project at a time: each gives its
    tasks the positions after the highest; taken second, as a storage sync holding the
    project's lock takes it when it imports); then the project row as :func:`lock_project`
    does (per-task writers never lock that row). The import touches no existing task, and it
    counts its tasks in the rank blocks only at its end, under their lock taken exclusively
    (:func:`server.services.imports.pipeline.finish`): from there its project's per-task
    writers wait for its commit. SQLite's writers are serialised whatever the locks."""
    advisory_xact_lock(ADVISORY_PROJECT, project_id, shared=True)
    advisory_xact_lock(ADVISORY_PROJECT_IMPORT, project_id)
    return _project_row_locked(project_id)


def share_project(project_id: int) -> None:
    """The lock of a per-task writer on its project, for the rest of the write transaction:
    on PostgreSQL the project's advisory lock in shared mode, which keeps the lock order of
    bulk writers (project, then tasks) without putting writers of different tasks in line.
    Such writers change the totals through :mod:`server.services.counters` and the
    completion-order blocks under :func:`server.services.tasks.rank_blocks.lock`, never the
    project row. SQLite's write transactions are serialised already."""
    advisory_xact_lock(ADVISORY_PROJECT, project_id, shared=True)


class _ConfigCache:
    """Parsed configs by (project uuid, config version): a request that needs a project's
    config never re-parses it. Bounded; values are immutable."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int], LabelConfig] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int], text: str) -> LabelConfig | None:
        with self._lock:
            config = self._items.get(key)
            if config is None or config.text != text:
                return None
            self._items.move_to_end(key)
            return config

    def put(self, key: tuple[str, int], config: LabelConfig) -> None:
        with self._lock:
            self._items[key] = config
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_configs = _ConfigCache()


def parsed_config(project: Project) -> LabelConfig:
    """The project's parsed config, cached per project and config version."""
    key = (project.uuid, project.label_config_version)
    config = _configs.get(key, project.label_config)
    if config is None:
        config = label_config.parse_uncached(project.label_config, max_bytes=None)
        _configs.put(key, config)
    return config


def normalise_sampling(value: str) -> str:
    value = SAMPLING_ALIASES.get(value, value)
    if value not in SAMPLING_MODES:
        raise DomainError(
            "invalid",
            f"Unknown sampling method {value!r}; use one of {', '.join(SAMPLING_MODES)}",
            {"field": "sampling"},
        )
    return value


def ensure_project(
    name: str, *, sampling: str = "sequential", label_config_text: str | None = None
) -> tuple[Project, bool]:
    """Get the project called ``name``, creating it if needed; returns (project, created)."""
    with write_transaction():
        project = Project.get_or_none(Project.name == name)
        if project is not None:
            return project, False
        text = EMPTY_CONFIG
        if label_config_text is not None:
            text = label_config.normalise(label_config_text)
            label_config.parse(text)
        project = Project.create(
            name=name, sampling=normalise_sampling(sampling), label_config=text
        )
        return project, True


def update_project(project_id: int, changes: dict[str, Any]) -> Project:
    """Apply the known settings in ``changes``; unknown keys are ignored (compat Q-15)."""
    values: dict[str, Any] = {}
    for key in _TEXT_SETTINGS:
        if key in changes and changes[key] is not None:
            if not isinstance(changes[key], str):
                raise DomainError("invalid", f"{key} must be a string", {"field": key})
            values[key] = changes[key]
    for key in _BOOL_SETTINGS:
        if key in changes and changes[key] is not None:
            if not isinstance(changes[key], bool):
                raise DomainError("invalid", f"{key} must be true or false", {"field": key})
            values[key] = changes[key]
    if changes.get("sampling") is not None:
        if not isinstance(changes["sampling"], str):
            raise DomainError("invalid", "sampling must be a string", {"field": "sampling"})
        values["sampling"] = normalise_sampling(changes["sampling"])
    with write_transaction():
        project = lock_project(project_id)
        if values:
            values["updated_at"] = now_seconds()
            Project.update(values).where(Project.id == project_id).execute()
            for key, value in values.items():
                setattr(project, key, value)
            events.emit(events.PROJECT_UPDATED, project_id, reason="settings")
        return project


def _parse_new(text: Any, max_bytes: int | None) -> LabelConfig:
    if not isinstance(text, str):
        raise LabelConfigError(ConfigIssue(NOT_A_STRING, "can only parse strings"))
    return label_config.parse(label_config.normalise(text), max_bytes)


def _data_issues(project_id: int, config: LabelConfig) -> list[ConfigIssue]:
    """What the project's tasks and completions object to (labeling-config.md §7)."""
    with write_transaction():
        project = lock_project(project_id)
        return derived_schema.issues(config, derived_schema.current(project))


def label_config_issues(
    text: Any,
    max_bytes: int | None = label_config.DEFAULT_MAX_BYTES,
    project_id: int | None = None,
) -> list[ConfigIssue]:
    """Why ``text`` cannot be the config (of ``project_id``, given its data); [] if it can.

    The config pipeline stops at its first failure; the project checks list every issue in
    the spec's order (Label Studio answers the first)."""
    try:
        config = _parse_new(text, max_bytes)
    except LabelConfigError as exc:
        return [exc.issue]
    return [] if project_id is None else _data_issues(project_id, config)


def set_label_config(
    project_id: int, text: Any, max_bytes: int | None = label_config.DEFAULT_MAX_BYTES
) -> Project:
    """Validate and store a labeling config (CRLF -> LF), refusing one that existing tasks
    or completions could not be loaded with (labeling-config.md §7)."""
    config = _parse_new(text, max_bytes)
    with write_transaction():
        project = lock_project(project_id)
        issues = derived_schema.issues(config, derived_schema.current(project))
        if not issues:
            version = project.label_config_version + 1
            Project.update(
                label_config=config.text,
                label_config_updated=True,
                label_config_version=version,
                updated_at=now_seconds(),
            ).where(Project.id == project_id).execute()
            project.label_config = config.text
            project.label_config_updated = True
            project.label_config_version = version
            _configs.put((project.uuid, version), config)
            events.emit(events.PROJECT_UPDATED, project_id, reason="config")
    # Raised after the transaction so the refreshed derived schema is kept.
    if issues:
        raise LabelConfigError(issues[0])
    return project


@dataclass(frozen=True)
class ConfigImpact:
    """What saving a config would do to a project's data (a dry run)."""

    issues: list[ConfigIssue]
    broken_completion_count: int
    broken_completions: list[derived_schema.BrokenCompletion]


def label_config_impact(
    project_id: int,
    text: Any,
    max_bytes: int | None = label_config.DEFAULT_MAX_BYTES,
    limit: int = 100,
) -> ConfigImpact:
    """Check ``text`` against the project without saving it: every issue, and which existing
    completions would no longer load (the first ``limit`` of them, and how many)."""
    try:
        config = _parse_new(text, max_bytes)
    except LabelConfigError as exc:
        return ConfigImpact([exc.issue], 0, [])
    issues = _data_issues(project_id, config)
    if not any(i.code in _COMPLETION_CODES for i in issues):
        return ConfigImpact(issues, 0, [])
    count, broken = derived_schema.broken_completions(project_id, config, max(0, limit))
    return ConfigImpact(issues, count, broken)


_COMPLETION_CODES = (
    ORPHANED_RESULTS,
    ORPHANED_CONTROL,
    ORPHANED_LABELS,
)


def sample_task(text: Any, max_bytes: int | None = label_config.DEFAULT_MAX_BYTES) -> Any:
    """A sample task's data for a config (``/api/import-example``); only the config matters."""
    return sample_tasks.editor_sample(_parse_new(text, max_bytes))


def sample_file(project: Project, file_format: str) -> sample_tasks.SampleFile:
    """Two sample tasks for the project's config as an import file (json, csv, tsv, txt)."""
    return sample_tasks.sample_file(parsed_config(project), file_format)
