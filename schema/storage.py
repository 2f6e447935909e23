"""Storages: a project's source and target storage, their sync state, and settings changes."""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry

from schema.context import Info
from schema.permissions import IsAdmin, inherits_access
from schema.scalars import JSON, from_seconds
from server.db import released
from server.errors import DomainError
from server.principal import Role
from server.services import projects as project_service
from server.services.storage import config as storage_config
from server.services.storage import sync_env
from server.services.storage.backends import StorageFailure, StorageSpec
from server.services.storage.config import StorageView
from server.services.storage.storage_types import DEFAULT_TYPES


@strawberry.enum(description="Where tasks come from (SOURCE) or completions go (TARGET).")
class StorageRole(Enum):
    SOURCE = "source"
    TARGET = "target"


@inherits_access(Role.ADMIN)
@strawberry.type(
    description="A project's source or target storage (rest-api.md §9) and its background "
    "sync state. Credentials are never shown: `params` masks them."
)
class Storage:
    view: strawberry.Private[StorageView]

    @strawberry.field
    def role(self) -> StorageRole:
        return StorageRole(self.view.role)

    @strawberry.field(description="tasks-json, s3, redis; completions-dir, s3-completions, …")
    def type(self) -> str:
        return self.view.type

    @strawberry.field
    def description(self) -> str:
        return self.view.description

    @strawberry.field(description="True when set explicitly (not the local default).")
    def configured(self) -> bool:
        return self.view.configured

    @strawberry.field(description="The bucket (S3) or key prefix (Redis), as set.")
    def path(self) -> str | None:
        return self.view.path

    @strawberry.field(description="E.g. s3://bucket/prefix, as Label Studio shows it.")
    def readable_path(self) -> str:
        return self.view.readable_path

    @strawberry.field(description="The other settings; credentials masked.")
    def params(self) -> JSON:
        return self.view.params

    @strawberry.field(description="A sync (source) or a write of completions (target) runs.")
    def syncing(self) -> bool:
        return self.view.syncing

    @strawberry.field
    def sync_started_at(self) -> dt.datetime | None:
        return from_seconds(self.view.sync_started_at)

    @strawberry.field(description="When the last sync or write finished without failing.")
    def synced_at(self) -> dt.datetime | None:
        return from_seconds(self.view.synced_at)

    @strawberry.field(description="Why the last sync or write failed or skipped objects.")
    def last_error(self) -> str | None:
        return self.view.last_error

    @strawberry.field
    def error_at(self) -> dt.datetime | None:
        return from_seconds(self.view.error_at)


def storage_view(info: Info, project_id: int, role: str) -> StorageView:
    ctx = info.context
    project_dir = ctx.project_settings(project_id).project_dir
    return storage_config.view(role, ctx.storages(project_id).get(role), project_dir)


@strawberry.type
class StorageMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Set a project's source or target storage: `values` are the form fields "
        "of `type` (default: the current type; see `Project.storageSettings`) and extras "
        "(S3: aws_access_key_id, aws_secret_access_key, aws_session_token, endpoint_url, "
        "data_key, presign; GCS: google_application_credentials, endpoint_url, data_key, "
        "presign; Azure: account_name, account_key, endpoint_url, data_key, presign). Field "
        "errors fail with INVALID and `extensions.fields` ({field: [message]}); a storage "
        "that cannot be reached fails with STORAGE. A source syncs at once, in the "
        "background; a target gets every labeled task's completions written.",
    )
    def set_storage(
        self,
        info: Info,
        role: StorageRole,
        values: JSON,
        type: str | None = None,
        project_id: int | None = None,
    ) -> Storage:
        ctx = info.context
        if not isinstance(values, dict):
            raise DomainError("invalid", "values must be a JSON object", {"field": "values"})
        pid = ctx.resolve_project_id(project_id)
        ctx.project(pid)  # NOT_FOUND for an unknown project
        current = storage_config.storage_rows(pid).get(role.value)
        if type is None:  # the current type's form
            type = current.type if current is not None else DEFAULT_TYPES[role.value]
        clean = storage_config.clean(role.value, type, values, current)
        project_dir = ctx.project_settings(pid).project_dir
        spec = StorageSpec(clean.type, clean.path, clean.params, project_dir)
        try:
            with released():
                sync_env.check_connection(spec, ctx.settings)
        except StorageFailure as exc:
            raise DomainError("storage", exc.message, {"type": clean.type}) from None
        storage_config.save(pid, clean)
        ctx.remember_project(project_service.get_project(pid))
        if ctx.storage is not None:
            ctx.storage.storage_changed(pid, role.value)
        return Storage(view=storage_view(info, pid, role.value))

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Sync a source storage (or rewrite a target's completions) now, in the "
        "background; returns the storage with its current state.",
    )
    def sync_storage(
        self, info: Info, role: StorageRole = StorageRole.SOURCE, project_id: int | None = None
    ) -> Storage:
        ctx = info.context
        pid = ctx.resolve_project_id(project_id)
        ctx.project(pid)
        if ctx.storage is not None:
            if role is StorageRole.SOURCE:
                ctx.storage.sync_source(pid)
            else:
                ctx.storage.write_completions(pid, None)
        return Storage(view=storage_view(info, pid, role.value))
