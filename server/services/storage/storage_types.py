"""The storage types (rest-api.md §9.2): roles, each type's form fields and which are secret.

A **source** storage other than the default ``tasks-json`` (``s3``, ``gcs``, ``azure-blob``,
``redis``) adds tasks by background sync; a **target** storage (``completions-dir``,
``s3-completions``, ``gcs-completions``, ``azure-blob-completions``, ``redis-completions``) gets
each labeled task's completions document written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.errors import DomainError

SOURCE, TARGET = "source", "target"
ROLES = (SOURCE, TARGET)
DEFAULT_TYPES = {SOURCE: "tasks-json", TARGET: "completions-dir"}
MASK = "********"
SECRET_PARAMS = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "password",
        "google_application_credentials",
        "account_key",
    }
)
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
# GCS: a service-account key (JSON) that signs URLs and, without an endpoint_url, authorizes
# the calls (else Application Default Credentials); endpoint_url: an emulator (anonymous calls).
GCS_EXTRAS = ("google_application_credentials", "endpoint_url", "data_key", "presign")
# Azure: the storage account and its key (else the operator's LABELGRAPH_AZURE_BLOB_ACCOUNT_*);
# endpoint_url: another blob endpoint than https://<account>.blob.core.windows.net (Azurite).
AZURE_EXTRAS = ("account_name", "account_key", "endpoint_url", "data_key", "presign")


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


def _cloud_source_fields(*extra: FormField) -> tuple[FormField, ...]:
    return (
        _path(),
        FormField("prefix", "StringField", "File prefix"),
        FormField(
            "regex",
            "StringField",
            "File filter by regex, example: .* (If not specified, all files will be skipped)",
            regex=True,
        ),
        FormField("use_blob_urls", "BooleanField", BLOB_URLS_HELP, default=True),
        *extra,
    )


def _cloud_target_fields(prefix_help: str) -> tuple[FormField, ...]:
    return (
        _path(),
        FormField("prefix", "StringField", prefix_help),
        FormField(
            "create_local_copy", "BooleanField", "Create a local copy on your disk", default=True
        ),
    )


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
            _cloud_source_fields(
                FormField(
                    "region", "StringField", "AWS region name for S3 bucket", default="us-east-1"
                )
            ),
            S3_EXTRAS,
        ),
        StorageType("gcs", SOURCE, "Google Cloud Storage", _cloud_source_fields(), GCS_EXTRAS),
        StorageType(
            "azure-blob", SOURCE, "Azure Blob Storage", _cloud_source_fields(), AZURE_EXTRAS
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
            _cloud_target_fields("S3 Bucket prefix"),
            (*S3_EXTRAS, "region"),
        ),
        StorageType(
            "gcs-completions",
            TARGET,
            "Google Cloud Storage",
            _cloud_target_fields("GCS Bucket prefix"),
            GCS_EXTRAS,
        ),
        StorageType(
            "azure-blob-completions",
            TARGET,
            "Azure Blob Storage",
            _cloud_target_fields("Azure Blob prefix"),
            AZURE_EXTRAS,
        ),
        StorageType("redis-completions", TARGET, "Redis Completions Storage", _redis_fields(2)),
    )
}
S3_TYPES = ("s3", "s3-completions")
GCS_TYPES = ("gcs", "gcs-completions")
AZURE_TYPES = ("azure-blob", "azure-blob-completions")
REDIS_TYPES = ("redis", "redis-completions")
CLOUD_SOURCES = ("s3", "gcs", "azure-blob")  # object stores: blob URLs or JSON objects
CLOUD_TARGETS = ("s3-completions", "gcs-completions", "azure-blob-completions")
CLOUD_TYPES = CLOUD_SOURCES + CLOUD_TARGETS
SYNCED_SOURCES = (*CLOUD_SOURCES, "redis")
# The URI scheme of each cloud type's objects (rest-api.md §9.3).
URI_SCHEMES = {
    **dict.fromkeys(S3_TYPES, "s3"),
    **dict.fromkeys(GCS_TYPES, "gs"),
    **dict.fromkeys(AZURE_TYPES, "azure-blob"),
}


def types_for(role: str) -> list[StorageType]:
    return [t for t in TYPES.values() if t.role == role]


def supported_names(role: str) -> list[str]:
    return [t.name for t in types_for(role)]


def storage_type(role: str, name: str) -> StorageType:
    """The type ``name`` for ``role``; a clear error for unknown types."""
    found = TYPES.get(name)
    if found is not None and found.role == role:
        return found
    supported = ", ".join(supported_names(role))
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
