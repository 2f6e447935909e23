"""Projects: lookup, creation, settings, labeling config."""

from __future__ import annotations

from typing import Any

from server.db import is_sqlite, write_transaction
from server.errors import DomainError, not_found
from server.models import Project, now_seconds
from server.services import label_config
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


def get_project(project_id: int) -> Project:
    project = Project.get_or_none(Project.id == project_id)
    if project is None:
        raise not_found("Project", project_id)
    return project


def get_project_by_uuid(uuid: str) -> Project:
    project = Project.get_or_none(Project.uuid == uuid)
    if project is None:
        raise not_found("Project", uuid)
    return project


def list_projects() -> list[Project]:
    return list(Project.select().order_by(Project.id))


def lock_project(project_id: int) -> Project:
    """Read the project inside a write transaction, serialising writers of this project.

    SQLite's ``BEGIN IMMEDIATE`` already serialises all writers; PostgreSQL takes a row lock.
    """
    query = Project.select().where(Project.id == project_id)
    if not is_sqlite():
        query = query.for_update()
    project = query.first()
    if project is None:
        raise not_found("Project", project_id)
    return project


def parsed_config(project: Project) -> label_config.LabelConfig:
    return label_config.parse(project.label_config)


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
        text = label_config.EMPTY_CONFIG
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
        return project


def set_label_config(project_id: int, text: str | None) -> Project:
    """Validate and store a labeling config (CRLF -> LF)."""
    if text is None:
        raise label_config.LabelConfigError("can only parse strings")
    text = label_config.normalise(text)
    label_config.parse(text)
    with write_transaction():
        project = lock_project(project_id)
        Project.update(
            label_config=text, label_config_updated=True, updated_at=now_seconds()
        ).where(Project.id == project_id).execute()
        project.label_config = text
        project.label_config_updated = True
        return project
