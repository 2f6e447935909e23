"""Background jobs claimed through the database, so any process of any host may run them.

A job row is ``queued`` until a process claims it: on PostgreSQL with
``SELECT … FOR UPDATE SKIP LOCKED`` (claimers never wait on each other's rows), on SQLite with
the same conditional ``UPDATE`` inside a write transaction (``BEGIN IMMEDIATE`` serialises
claimers). The claimer becomes ``lease_owner`` and must renew its lease (``heartbeat``) before
``lease_expires_at``; a job whose lease ran out (its process died or hung) is claimed again by
any process, up to ``max_attempts`` claims, after which it is failed with the reason.

Every write a running job makes is conditional on still owning it, so a process that lost its
lease (paused past the lease, then woke up) changes nothing.

Its writes touch job rows only and are short: they are bookkeeping
(``write_transaction(bookkeeping=True)``), so on PostgreSQL they take none of the process's
write slots, and a heartbeat never queues behind writers waiting for an import (losing its
lease).

Why not procrastinate (or another PostgreSQL queue library): SQLite is the default database and
must run the same jobs; the few statements here are the whole queue, on the tables and
transactions the server already has.
"""

from __future__ import annotations

from typing import Any

import peewee

from server.db import is_sqlite, write_transaction
from server.models import Job, now_seconds
from server.services import events

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
FINISHED = (DONE, FAILED)
UNEXPECTED = "Unexpected error; see the server log"


def lease_lost_reason(attempts: int, lease: int) -> str:
    return (
        f"The process running this job stopped sending heartbeats for {lease} s "
        f"({attempts} attempts); giving up"
    )


def announce(job_id: int, project_id: int | None = None) -> None:
    """A JOB_PROGRESS event for ``jobProgress`` subscribers, sent once the caller's
    transaction commits; no query when nobody listens."""
    if not events.bus.listening():
        return
    if project_id is None:
        project_id = Job.select(Job.project).where(Job.id == job_id).scalar()
    if project_id is not None:
        events.emit(events.JOB_PROGRESS, int(project_id), (job_id,))


def enqueue(project_id: int, kind: str, params: dict[str, Any], total: int = 0) -> Job:
    """Store a queued job; any process's worker may claim it."""
    with write_transaction(bookkeeping=True):
        job: Job = Job.create(project=project_id, kind=kind, params=params, total=total)
        return job


def _claimable(now: int, kinds: tuple[str, ...], max_attempts: int) -> peewee.Expression:
    expired = (Job.state == RUNNING) & (Job.lease_expires_at < now)
    return Job.kind.in_(kinds) & ((Job.state == QUEUED) | expired) & (Job.attempts < max_attempts)


def claim_next(owner: str, kinds: tuple[str, ...], lease: int, max_attempts: int) -> Job | None:
    """Claim the oldest claimable job of ``kinds`` for ``owner``; None when there is none."""
    now = now_seconds()
    if not Job.select(Job.id).where(_claimable(now, kinds, max_attempts)).exists():
        return None  # the usual answer, without taking SQLite's write lock
    with write_transaction(bookkeeping=True):
        query = Job.select(Job.id).where(_claimable(now, kinds, max_attempts))
        query = query.order_by(Job.id).limit(1)
        if not is_sqlite():
            query = query.for_update("FOR UPDATE SKIP LOCKED")  # type: ignore[arg-type]
        job_id = query.scalar()
        if job_id is None:
            return None
        taken = (
            Job.update(
                state=RUNNING,
                lease_owner=owner,
                heartbeat_at=now,
                lease_expires_at=now + lease,
                attempts=Job.attempts + 1,
                started_at=peewee.fn.COALESCE(Job.started_at, now),
                done=0,
                failed=0,
                error=None,
            )
            .where(Job.id == job_id, _claimable(now, kinds, max_attempts))
            .execute()
        )
        if not taken:
            return None
        claimed: Job = Job.get_by_id(job_id)
        announce(job_id, claimed.project_id)
        return claimed


def heartbeat(job_ids: list[int], owner: str, lease: int) -> set[int]:
    """Renew the leases of ``job_ids`` held by ``owner``; returns the ids still held."""
    if not job_ids:
        return set()
    now = now_seconds()
    with write_transaction(bookkeeping=True):
        Job.update(heartbeat_at=now, lease_expires_at=now + lease).where(
            Job.id.in_(job_ids), Job.lease_owner == owner, Job.state == RUNNING
        ).execute()
        held = Job.select(Job.id).where(
            Job.id.in_(job_ids), Job.lease_owner == owner, Job.state == RUNNING
        )
        return set(held.scalars())


def record_progress(
    job_id: int, owner: str, *, done: int = 0, failed: int = 0, total: int | None = None
) -> bool:
    """The one place a job's progress changes (add ``done``/``failed``, set ``total``); False
    when ``owner`` no longer holds the job. Runs in the caller's transaction if there is one;
    subscribers hear of it after that commits."""
    values: dict[Any, Any] = {}
    if done:
        values[Job.done] = Job.done + done
    if failed:
        values[Job.failed] = Job.failed + failed
    if total is not None:
        values[Job.total] = total
    if not values:
        return True
    with write_transaction(bookkeeping=True):
        changed = (
            Job.update(values)
            .where(Job.id == job_id, Job.lease_owner == owner, Job.state == RUNNING)
            .execute()
        )
        if changed:
            announce(job_id)
    return bool(changed)


def finish(
    job_id: int, owner: str, state: str, error: str | None = None, result: Any = None
) -> bool:
    """End a job ``owner`` holds as ``done`` or ``failed``; False if it no longer holds it."""
    assert state in FINISHED
    with write_transaction(bookkeeping=True):
        changed = (
            Job.update(
                state=state,
                error=None if error is None else error[:2000],
                result=result,
                finished_at=now_seconds(),
                lease_owner=None,
                lease_expires_at=None,
            )
            .where(Job.id == job_id, Job.lease_owner == owner, Job.state == RUNNING)
            .execute()
        )
        if changed:
            announce(job_id)
    return bool(changed)


def release(job_id: int, owner: str) -> bool:
    """Hand a job back to the queue (its process is stopping): another claims it at once.
    A graceful stop does not count as an attempt."""
    with write_transaction(bookkeeping=True):
        changed = (
            Job.update(
                state=QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                attempts=peewee.fn.MAX(Job.attempts - 1, 0)
                if is_sqlite()
                else peewee.fn.GREATEST(Job.attempts - 1, 0),
            )
            .where(Job.id == job_id, Job.lease_owner == owner, Job.state == RUNNING)
            .execute()
        )
        if changed:
            announce(job_id)
    return bool(changed)


def fail_abandoned(lease: int, max_attempts: int) -> int:
    """Fail the jobs whose lease ran out after their last allowed attempt; returns how many."""
    now = now_seconds()
    abandoned = (Job.state == RUNNING) & (Job.lease_expires_at < now)
    if not Job.select(Job.id).where(abandoned, Job.attempts >= max_attempts).exists():
        return 0  # the usual answer, without taking SQLite's write lock
    with write_transaction(bookkeeping=True):
        rows = list(Job.select(Job.id, Job.attempts).where(abandoned, Job.attempts >= max_attempts))
        for row in rows:
            Job.update(
                state=FAILED,
                error=lease_lost_reason(row.attempts, lease),
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
            ).where(Job.id == row.id, Job.state == RUNNING, Job.lease_expires_at < now).execute()
            announce(row.id)
    return len(rows)
