"""What source syncs and target writes share: the environment, a storage's spec, the
connection check, the lease and the outcome.

A sync holds its storage through a lease (``Storage.syncing``), which is also what
``source_syncing``/``target_syncing`` report. The lease is named (``Storage.sync_lease``): a
sync that stalled past its lease and was taken over finds out at its next renewal
(:class:`LeaseLost`) and stops, and cannot end the new holder's lease. Network calls happen
outside transactions and without a database connection held: read, call, write.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from server.db import write_transaction
from server.models import Project, Storage, now_seconds
from server.services.storage.backends import (
    ClientCache,
    RedisStore,
    StorageSpec,
    client_for,
)
from server.services.storage.config import SYNC_LEASE
from server.services.storage.storage_types import CLOUD_TYPES, REDIS_TYPES
from server.settings import Settings

UNEXPECTED = "Unexpected error; see the server log"
LEASE_LOST = "stopped: the sync stalled past its lease and another process took it over"
MAX_PROBLEMS = 5


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
    """Ask a storage whether it answers (S3, GCS: the bucket exists; Azure: the container;
    Redis: PING): the check of ``POST /api/project/storage-settings``. Local types need
    none."""
    if spec.type in CLOUD_TYPES or spec.type in REDIS_TYPES:
        store = client_for(spec, settings, None)
        try:
            store.check()
        finally:
            if isinstance(store, RedisStore):
                store.close()


# --- the lease -----------------------------------------------------------------------------


class LeaseLost(Exception):
    """The sync's lease ran out and another sync holds the storage now."""


def claim(project_id: int, role: str) -> tuple[Storage | None, bool]:
    """Take the project's storage for a sync: (row, False) when taken, ``row.sync_lease``
    naming this holder; (None, True) when another sync holds it; (None, False) when there is
    no such storage."""
    row = Storage.get_or_none(Storage.project == project_id, Storage.role == role)
    if row is None:
        return None, False
    now = now_seconds()
    lease = secrets.token_hex(16)
    with write_transaction():
        free = (Storage.syncing == False) | (Storage.sync_started_at <= now - SYNC_LEASE)  # noqa: E712
        taken = (
            Storage.update(syncing=True, sync_started_at=now, sync_lease=lease)
            .where(Storage.id == row.id, free)
            .execute()
        )
        if not taken:
            return None, Storage.get_or_none(Storage.id == row.id) is not None
        return Storage.get_by_id(row.id), False


def _held(row: Storage) -> Any:
    return (
        (Storage.id == row.id)
        & (Storage.syncing == True)  # noqa: E712
        & (Storage.sync_lease == row.sync_lease)
    )


def renew(row: Storage) -> None:
    """The sync holding the storage is alive: restart its lease (called between chunks), so a
    sync longer than the lease is not taken over while a dead one still is after a lease.
    :class:`LeaseLost` when another sync took the storage over meanwhile."""
    with write_transaction():
        if not Storage.update(sync_started_at=now_seconds()).where(_held(row)).execute():
            raise LeaseLost


def release(row: Storage, error: str | None, *, synced: bool) -> None:
    """End this sync's lease with its outcome (nothing when another sync holds it now)."""
    now = now_seconds()
    values: dict[Any, Any] = {Storage.syncing: False, Storage.sync_lease: None}
    if synced:
        values[Storage.synced_at] = now
    values[Storage.last_error] = None if error is None else error[:2000]
    values[Storage.error_at] = None if error is None else now
    with write_transaction():
        Storage.update(values).where(_held(row)).execute()


def problems_summary(problems: list[str]) -> str | None:
    if not problems:
        return None
    shown = "; ".join(problems[:MAX_PROBLEMS])
    more = len(problems) - MAX_PROBLEMS
    return f"{len(problems)} objects skipped: {shown}" + (f"; and {more} more" if more > 0 else "")


@dataclass
class SyncOutcome:
    status: str  # done, failed, busy, none
    added: int = 0
    error: str | None = None
