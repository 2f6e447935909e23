"""A project's storage settings (rest-api.md §9.2): validation of submitted forms, masking of
credentials, the views and the rows that keep a project's source and target storage.

Tasks and completions always live in the database; the types are described in
:mod:`server.services.storage.storage_types`, syncs in
:mod:`server.services.storage.source_sync` and :mod:`server.services.storage.target_sync`.
Credentials (``aws_*``, ``password``, ``google_application_credentials``, ``account_key``) are
stored in the row's ``params`` and never leave the
server: every view of a storage masks them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from server.db import database, write_transaction
from server.errors import DomainError
from server.models import Project, Storage, StorageKey, now_seconds
from server.services.projects import lock_project
from server.services.storage.key_filter import compile_key_regex
from server.services.storage.storage_types import (
    CLOUD_TYPES,
    DEFAULT_TYPES,
    MASK,
    REDIS_TYPES,
    ROLES,
    SECRET_PARAMS,
    SOURCE,
    TARGET,
    TYPES,
    URI_SCHEMES,
    FormField,
    check_role,
    storage_type,
    types_for,
)

REQUIRED = "This field is required."
# Where a storage's credentials go: a stored secret is kept (masked value sent back) only
# while these stay the same, so that it cannot be sent to a host the client picks.
DESTINATION = {
    "s3": ("path", "endpoint_url", "region"),
    "s3-completions": ("path", "endpoint_url", "region"),
    "gcs": ("path", "endpoint_url"),
    "gcs-completions": ("path", "endpoint_url"),
    "azure-blob": ("path", "endpoint_url", "account_name"),
    "azure-blob-completions": ("path", "endpoint_url", "account_name"),
    "redis": ("host", "port"),
    "redis-completions": ("host", "port"),
}
NOT_INTEGER = "Not a valid integer value"
NOT_BOOLEAN = "Not a valid boolean value"
NOT_STRING = "Not a valid string value"
NOT_KEY = "Not a service account key (JSON with type, client_email and private_key)"


# --- validation ----------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(NOT_STRING)
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(NOT_STRING)
    return value


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "y"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", "n", ""):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(NOT_BOOLEAN)


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(NOT_INTEGER)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise ValueError(NOT_INTEGER)


def _service_account_key(value: Any) -> str:
    """A GCS service-account key, given as its JSON text or as the object itself."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(NOT_KEY) from None
    if not (
        isinstance(value, dict)
        and value.get("type") == "service_account"
        and isinstance(value.get("client_email"), str)
        and isinstance(value.get("private_key"), str)
    ):
        raise ValueError(NOT_KEY)
    return json.dumps(value, sort_keys=True)


def _clean_extra(name: str, raw: Any) -> Any:
    if name == "presign":
        return _boolean(raw)
    if name == "google_application_credentials":
        return _service_account_key(raw) if raw != "" else ""
    return _text(raw)


def _clean_field(spec: FormField, raw: Any) -> Any:
    if spec.kind == "BooleanField":
        return spec.default if raw is None else _boolean(raw)
    if spec.kind == "IntegerField":
        return spec.default if raw is None or raw == "" else _integer(raw)
    value = _text(raw)
    if value is None or value == "":
        if spec.required:
            raise ValueError(REQUIRED)
        return spec.default if value is None else value
    if spec.regex:
        compile_key_regex(value)
    if spec.port and not (value.isdigit() and 0 < int(value) < 65536):
        raise ValueError(NOT_INTEGER)
    return value


@dataclass(frozen=True)
class CleanStorage:
    """A validated storage: its type, path (bucket, prefix path) and other parameters."""

    role: str
    type: str
    path: str | None
    params: dict[str, Any] = field(default_factory=dict)


def clean(
    role: str, type_name: str, values: Mapping[str, Any], current: Storage | None = None
) -> CleanStorage:
    """Validate the form ``values`` for ``type_name``: field errors are ``invalid`` with
    ``details["fields"] = {name: [message]}`` (Label Studio's ``{"errors": …}``). Unknown keys
    are ignored; a masked secret (``********``) keeps the stored value, as long as the
    storage still points where it did (:data:`DESTINATION`)."""
    spec = storage_type(check_role(role), type_name)
    kept = dict(current.params) if current is not None and current.type == type_name else {}
    errors: dict[str, list[str]] = {}
    result: dict[str, Any] = {}
    reused: list[str] = []  # secrets taken from the stored row
    for form_field in spec.fields:
        raw = values.get(form_field.name)
        if raw == MASK and form_field.name in SECRET_PARAMS:
            raw = kept.get(form_field.name)
            if raw is not None:
                reused.append(form_field.name)
        try:
            result[form_field.name] = _clean_field(form_field, raw)
        except ValueError as exc:
            errors[form_field.name] = [str(exc)]
    for name in spec.extras:
        if name not in values or values[name] is None:
            continue
        raw = values[name]
        if raw == MASK and name in SECRET_PARAMS:
            raw = kept.get(name)
            if raw is None:
                continue
            reused.append(name)
        try:
            result[name] = _clean_extra(name, raw)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if reused and current is not None and not errors:
        changed = _moved(type_name, result, current)
        for name in reused if changed else ():
            errors[name] = [
                f"Enter the {name} again: a stored secret is not sent to a changed "
                f"{', '.join(changed)}"
            ]
    if errors:
        first = next(iter(errors))
        message = f"{first}: {errors[first][0]}"
        raise DomainError("invalid", message, {"fields": errors})
    path = result.pop("path", None)
    return CleanStorage(role, type_name, path, {k: v for k, v in result.items() if v is not None})


def _moved(type_name: str, result: Mapping[str, Any], current: Storage) -> list[str]:
    """The destination fields (host, port, endpoint, bucket, region) that differ from the
    stored storage's."""
    stored = {"path": current.path, **(current.params or {})}
    return [
        name
        for name in DESTINATION.get(type_name, ())
        if (result.get(name) or None) != (stored.get(name) or None)
    ]


# --- views ---------------------------------------------------------------------------------


def masked(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (MASK if k in SECRET_PARAMS and v else v) for k, v in params.items()}


@dataclass(frozen=True)
class StorageView:
    """A project's storage for one role as clients see it (defaults when no row)."""

    role: str
    type: str
    path: str | None
    params: dict[str, Any]  # masked
    readable_path: str
    syncing: bool = False
    sync_started_at: int | None = None
    synced_at: int | None = None
    last_error: str | None = None
    error_at: int | None = None
    configured: bool = False

    @property
    def description(self) -> str:
        return TYPES[self.type].description


SYNC_LEASE = 600  # seconds a sync may hold a storage before others may take over


def redis_prefix(path: str | None, project_dir: str) -> str:
    """Redis keys are ``<prefix>/<id>``; the prefix defaults to the project directory."""
    return (path or project_dir).rstrip("/")


def readable_path(
    role: str, type_name: str, path: str | None, params: Mapping[str, Any], project_dir: str
) -> str:
    if type_name in CLOUD_TYPES:
        return f"{URI_SCHEMES[type_name]}://{path}/{params.get('prefix') or ''}"
    if type_name in REDIS_TYPES:
        return redis_prefix(path, project_dir) + "/"
    return TYPES[type_name].readable


def view(role: str, row: Storage | None, project_dir: str) -> StorageView:
    if row is None:
        name = DEFAULT_TYPES[role]
        return StorageView(role, name, None, {}, TYPES[name].readable)
    now = now_seconds()
    syncing = bool(row.syncing) and (row.sync_started_at or 0) > now - SYNC_LEASE
    return StorageView(
        role=role,
        type=row.type,
        path=row.path,
        params=masked(row.params or {}),
        readable_path=readable_path(role, row.type, row.path, row.params or {}, project_dir),
        syncing=syncing,
        sync_started_at=row.sync_started_at,
        synced_at=row.synced_at,
        last_error=row.last_error,
        error_at=row.error_at,
        configured=True,
    )


def has_target(project_id: int) -> bool:
    """Whether a project has a target storage: one indexed lookup in raw SQL (~5 µs; a peewee
    query costs ~20x that), for the path of every completion change."""
    mark = database.param
    cursor = database.execute_sql(
        f'SELECT 1 FROM "storage" WHERE "project_id" = {mark} AND "role" = {mark} LIMIT 1',
        (project_id, TARGET),
    )
    return cursor.fetchone() is not None


def storage_rows(project_id: int) -> dict[str, Storage]:
    """The project's storage rows by role (one query)."""
    return {row.role: row for row in Storage.select().where(Storage.project == project_id)}


def settings_document(rows: Mapping[str, Storage], project_dir: str) -> dict[str, Any]:
    """``GET /api/project/storage-settings`` (rest-api.md §9.2): every supported type's form
    per role; the current type's fields carry the current values (secrets masked)."""
    document: dict[str, Any] = {}
    for role in ROLES:
        current = view(role, rows.get(role), project_dir)
        raw = rows[role].params if role in rows else {}
        values = {"path": current.path, **(raw or {})}
        forms: dict[str, Any] = {}
        for spec in types_for(role):
            is_current = spec.name == current.type
            forms[spec.name] = {
                "type": spec.name,
                "current": is_current,
                "description": spec.description,
                "path": current.readable_path,
                "fields": [f.describe(values.get(f.name), is_current) for f in spec.fields],
            }
        document[role] = forms
    return document


# --- saving --------------------------------------------------------------------------------


def summary(project: Project) -> dict[str, str]:
    """The storage types a project uses, kept in ``Project.settings["storages"]`` so that hot
    paths (serving task data) know without a query whether S3 is involved."""
    value = (project.settings or {}).get("storages")
    return dict(value) if isinstance(value, dict) else {}


def save(project_id: int, storage: CleanStorage) -> Storage | None:
    """Store a validated storage for its role (the connection was checked before). The
    default source (``tasks-json``) removes the source row; a new target forgets what was
    written to the previous one. Returns the row (None for the default source)."""
    with write_transaction():
        project = lock_project(project_id)
        row = Storage.get_or_none(Storage.project == project_id, Storage.role == storage.role)
        now = now_seconds()
        if storage.role == TARGET:
            StorageKey.delete().where(
                StorageKey.project == project_id, StorageKey.role == TARGET
            ).execute()
        if storage.role == SOURCE and storage.type == DEFAULT_TYPES[SOURCE]:
            if row is not None:
                row.delete_instance()
            row = None
        elif row is None:
            row = Storage.create(
                project=project_id,
                role=storage.role,
                type=storage.type,
                path=storage.path,
                params=storage.params,
            )
        else:
            Storage.update(
                type=storage.type,
                path=storage.path,
                params=storage.params,
                last_error=None,
                error_at=None,
                synced_at=None,
                updated_at=now,
            ).where(Storage.id == row.id).execute()
            row = Storage.get_by_id(row.id)
        settings = dict(project.settings or {})
        kinds = summary(project)
        if row is None:
            kinds.pop(storage.role, None)
        else:
            kinds[storage.role] = storage.type
        settings["storages"] = kinds
        Project.update(settings=settings, updated_at=now).where(Project.id == project_id).execute()
        return row
