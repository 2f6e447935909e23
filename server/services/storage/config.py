"""Storage settings (rest-api.md §9.2): the storage types, their forms, validation, masking of
credentials, and the rows that keep a project's source and target storage.

Tasks and completions always live in the database. A **source** storage other than the
default ``tasks-json`` (``s3``, ``redis``) adds tasks by background sync; a **target** storage
(``completions-dir``, ``s3-completions``, ``redis-completions``) gets each labeled task's
completions document written after the completion is stored (see
:mod:`server.services.storage.sync`). GCS and Azure are not implemented: asking for them is a
clear 400 naming the supported types.

Credentials (``aws_*``, ``password``) are stored in the row's ``params`` and never leave the
server: every view of a storage masks them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from server.db import database, write_transaction
from server.errors import DomainError
from server.models import Project, Storage, StorageKey, now_seconds
from server.services.projects import lock_project

SOURCE, TARGET = "source", "target"
ROLES = (SOURCE, TARGET)
DEFAULT_TYPES = {SOURCE: "tasks-json", TARGET: "completions-dir"}
MASK = "********"
SECRET_PARAMS = frozenset(
    {"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "password"}
)
NOT_IMPLEMENTED = ("gcs", "azure-blob", "gcs-completions", "azure-blob-completions")
REQUIRED = "This field is required."
NOT_INTEGER = "Not a valid integer value"
NOT_BOOLEAN = "Not a valid boolean value"
NOT_STRING = "Not a valid string value"
BLOB_URLS_HELP = (
    "Generate task data with URLs pointed to your bucket objects (for resources like jpg, mp3 "
    "& other BLOBs). This could be used for label configs with <b>one data key only</b>. If "
    "not selected, bucket objects will be interpreted as tasks in Label Studio JSON format and "
    "it's suitable for <b>multiple data keys</b>"
)


@dataclass(frozen=True)
class FormField:
    """A field of a storage form, described the way Label Studio's WTForms fields were."""

    name: str
    kind: str  # StringField, BooleanField, IntegerField
    description: str
    default: Any = None
    required: bool = False
    regex: bool = False
    port: bool = False

    def describe(self, value: Any, current: bool) -> dict[str, Any]:
        data = value if current else self.default
        if self.name in SECRET_PARAMS and data:
            data = MASK
        return {
            "name": self.name,
            "id": self.name,
            "short_name": self.name,
            "type": self.kind,
            "data": data,
            "default": self.default,
            "description": self.description,
            "raw_data": None,
            "object_data": data,
            "render_kw": None,
            "do_not_call_in_templates": True,
        }


S3_EXTRAS = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "endpoint_url",
    "data_key",
    "presign",
)


@dataclass(frozen=True)
class StorageType:
    name: str
    role: str
    description: str
    fields: tuple[FormField, ...] = ()
    # Other keys a POST body may set (kept in params): credentials, endpoint, options.
    extras: tuple[str, ...] = ()
    readable: str = ""  # the readable path of the local defaults

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _path(description: str = "Storage path (e.g. bucket/container name)") -> FormField:
    return FormField("path", "StringField", description, required=True)


def _redis_fields(db: int) -> tuple[FormField, ...]:
    return (
        FormField("path", "StringField", "Storage prefix (optional)"),
        FormField("host", "StringField", "Server Host IP (optional)"),
        FormField("port", "StringField", "Server Port (optional)", port=True),
        FormField("password", "StringField", "Server Password (optional)"),
        FormField("db", "IntegerField", "Server Database (optional)", default=db),
    )


TYPES: dict[str, StorageType] = {
    t.name: t
    for t in (
        StorageType(
            "tasks-json",
            SOURCE,
            'Local [loading tasks from "tasks.json" file]',
            readable="tasks.json",
        ),
        StorageType(
            "s3",
            SOURCE,
            "Amazon S3",
            (
                _path(),
                FormField("prefix", "StringField", "File prefix"),
                FormField(
                    "regex",
                    "StringField",
                    "File filter by regex, example: .* (If not specified, all files will be "
                    "skipped)",
                    regex=True,
                ),
                FormField("use_blob_urls", "BooleanField", BLOB_URLS_HELP, default=True),
                FormField(
                    "region", "StringField", "AWS region name for S3 bucket", default="us-east-1"
                ),
            ),
            S3_EXTRAS,
        ),
        StorageType("redis", SOURCE, "Redis database connection", _redis_fields(1)),
        StorageType(
            "completions-dir",
            TARGET,
            'Local [completions are in "completions" directory]',
            readable="completions",
        ),
        StorageType(
            "s3-completions",
            TARGET,
            "Amazon S3",
            (
                _path(),
                FormField("prefix", "StringField", "S3 Bucket prefix"),
                FormField(
                    "create_local_copy",
                    "BooleanField",
                    "Create a local copy on your disk",
                    default=True,
                ),
            ),
            (*S3_EXTRAS, "region"),
        ),
        StorageType("redis-completions", TARGET, "Redis Completions Storage", _redis_fields(2)),
    )
}
S3_TYPES = ("s3", "s3-completions")
REDIS_TYPES = ("redis", "redis-completions")
SYNCED_SOURCES = ("s3", "redis")


def types_for(role: str) -> list[StorageType]:
    return [t for t in TYPES.values() if t.role == role]


def supported_names(role: str) -> list[str]:
    return [t.name for t in types_for(role)]


def storage_type(role: str, name: str) -> StorageType:
    """The type ``name`` for ``role``; a clear error for unknown and unimplemented types."""
    found = TYPES.get(name)
    if found is not None and found.role == role:
        return found
    supported = ", ".join(supported_names(role))
    if name in NOT_IMPLEMENTED:
        message = (
            f"Storage type {name} is not supported by this server; supported {role} types: "
            f"{supported}"
        )
    else:
        message = f"Unknown {role} storage type {name!r}; use one of: {supported}"
    raise DomainError("invalid", message, {"field": "type", "supported": supported_names(role)})


def check_role(role: str) -> str:
    if role not in ROLES:
        raise DomainError(
            "invalid",
            f"storage_for must be source or target, not {role!r}",
            {"field": "storage_for"},
        )
    return role


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
        try:
            re.compile(value)
        except re.error:
            raise ValueError(f"{value} is not a valid regular expression") from None
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
    are ignored; a masked secret (``********``) keeps the stored value."""
    spec = storage_type(check_role(role), type_name)
    kept = dict(current.params) if current is not None and current.type == type_name else {}
    errors: dict[str, list[str]] = {}
    result: dict[str, Any] = {}
    for form_field in spec.fields:
        raw = values.get(form_field.name)
        if raw == MASK and form_field.name in SECRET_PARAMS:
            raw = kept.get(form_field.name)
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
        try:
            result[name] = _boolean(raw) if name == "presign" else _text(raw)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        first = next(iter(errors))
        message = f"{first}: {errors[first][0]}"
        raise DomainError("invalid", message, {"fields": errors})
    path = result.pop("path", None)
    return CleanStorage(role, type_name, path, {k: v for k, v in result.items() if v is not None})


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
    if type_name in S3_TYPES:
        return f"s3://{path}/{params.get('prefix') or ''}"
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
