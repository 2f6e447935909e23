"""A storage is synced by one process at a time: the sync's lease, renewed between chunks, keeps
a long sync its own; a sync whose process died is taken over once the lease ran out."""

from __future__ import annotations

import pytest

from server import db
from server.models import Storage, now_seconds
from server.services.storage.config import SYNC_LEASE
from server.services.storage.sync_env import LeaseLost, claim, release, renew


def _storage(project_id: int) -> int:
    with db.write_transaction():
        row = Storage.create(project=project_id, role="source", type="s3", path="bucket")
    return int(row.id)


def _age_lease(storage_id: int) -> None:
    """The holder started longer ago than the lease lasts."""
    with db.write_transaction():
        Storage.update(sync_started_at=now_seconds() - SYNC_LEASE - 5).where(
            Storage.id == storage_id
        ).execute()


def test_a_renewed_lease_keeps_a_long_sync_its_own(project_id: int) -> None:
    def run() -> None:
        storage_id = _storage(project_id)
        held, busy = claim(project_id, "source")
        assert held is not None and not busy
        _age_lease(storage_id)
        renew(held)  # the long sync is still working
        assert claim(project_id, "source") == (None, True)
        release(held, None, synced=True)
        again, busy = claim(project_id, "source")
        assert again is not None and not busy

    db.with_connection(run)


def test_a_sync_whose_process_died_is_taken_over_after_the_lease(project_id: int) -> None:
    def run() -> None:
        storage_id = _storage(project_id)
        assert claim(project_id, "source")[0] is not None
        assert claim(project_id, "source") == (None, True)
        _age_lease(storage_id)  # no renewals: its process is gone
        taken, busy = claim(project_id, "source")
        assert taken is not None and not busy

    db.with_connection(run)


def test_a_stalled_sync_that_was_taken_over_stops_and_leaves_the_new_holder_alone(
    project_id: int,
) -> None:
    def run() -> None:
        storage_id = _storage(project_id)
        stalled, _ = claim(project_id, "source")
        assert stalled is not None
        _age_lease(storage_id)  # it hung (not dead) past its lease
        holder, busy = claim(project_id, "source")
        assert holder is not None and not busy and holder.sync_lease != stalled.sync_lease
        with pytest.raises(LeaseLost):
            renew(stalled)  # it wakes up: its next renewal tells it to stop
        release(stalled, "late", synced=False)  # and its end changes nothing
        row = Storage.get_by_id(storage_id)
        assert row.syncing and row.sync_lease == holder.sync_lease and row.last_error is None
        assert claim(project_id, "source") == (None, True)
        renew(holder)
        release(holder, None, synced=True)
        row = Storage.get_by_id(storage_id)
        assert not row.syncing and row.sync_lease is None and row.synced_at is not None

    db.with_connection(run)
