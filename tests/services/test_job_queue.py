"""Jobs claimed through the database: one owner at a time, leases that run out are claimed
again, a lost lease makes the old owner's writes no-ops, exhausted jobs fail with a reason."""

from __future__ import annotations

import threading
from collections import Counter

from starlette.testclient import TestClient

from server import db
from server.models import Job, now_seconds
from server.services.jobs import queue

KINDS = ("queue-test",)  # a kind no worker of the test app runs
LEASE = 30


def _expire(job_id: int) -> None:
    """The owner stopped sending heartbeats long ago (its process died)."""
    with db.write_transaction():
        Job.update(lease_expires_at=now_seconds() - 1).where(Job.id == job_id).execute()


def test_a_job_has_one_owner_until_its_lease_runs_out(project_id: int) -> None:
    def run() -> None:
        job = queue.enqueue(project_id, "queue-test", {"task_ids": [1]}, total=1)
        first = queue.claim_next("host-a:1", KINDS, LEASE, 3)
        assert first is not None and first.id == job.id
        assert (first.state, first.lease_owner, first.attempts) == ("running", "host-a:1", 1)
        assert queue.claim_next("host-b:2", KINDS, LEASE, 3) is None
        assert queue.heartbeat([job.id], "host-a:1", LEASE) == {job.id}
        assert queue.record_progress(job.id, "host-a:1", done=1)

        _expire(job.id)
        second = queue.claim_next("host-b:2", KINDS, LEASE, 3)
        assert second is not None and second.id == job.id
        assert (second.lease_owner, second.attempts, second.done) == ("host-b:2", 2, 0)
        # The first owner wakes up: everything it tries is refused.
        assert queue.heartbeat([job.id], "host-a:1", LEASE) == set()
        assert not queue.record_progress(job.id, "host-a:1", done=1)
        assert not queue.finish(job.id, "host-a:1", queue.DONE)
        assert queue.finish(job.id, "host-b:2", queue.DONE, result={"ok": True})
        row = Job.get_by_id(job.id)
        assert (row.state, row.done, row.result, row.lease_owner) == ("done", 0, {"ok": True}, None)

    db.with_connection(run)


def test_a_job_whose_processes_keep_dying_fails_with_the_reason(project_id: int) -> None:
    def run() -> None:
        job = queue.enqueue(project_id, "queue-test", {}, total=0)
        for attempt in (1, 2):
            claimed = queue.claim_next(f"host:{attempt}", KINDS, LEASE, 2)
            assert claimed is not None and claimed.attempts == attempt
            _expire(job.id)
        assert queue.claim_next("host:3", KINDS, LEASE, 2) is None
        assert queue.fail_abandoned(LEASE, 2) == 1
        row = Job.get_by_id(job.id)
        assert row.state == "failed"
        assert row.error == queue.lease_lost_reason(2, LEASE)
        assert "stopped sending heartbeats" in row.error

    db.with_connection(run)


def test_a_released_job_is_queued_again_without_counting_an_attempt(project_id: int) -> None:
    def run() -> None:
        job = queue.enqueue(project_id, "queue-test", {}, total=0)
        assert queue.claim_next("host:1", KINDS, LEASE, 3) is not None
        assert queue.release(job.id, "host:1")
        row = Job.get_by_id(job.id)
        assert (row.state, row.attempts, row.lease_owner) == ("queued", 0, None)
        again = queue.claim_next("host:2", KINDS, LEASE, 3)
        assert again is not None and again.attempts == 1

    db.with_connection(run)


def test_claimers_racing_take_each_job_exactly_once(client: TestClient, project_id: int) -> None:
    """Eight threads (each its own connection, as separate processes would have) claim forty
    jobs at once: every job is claimed once, none twice."""
    jobs = 40

    def enqueue_all() -> list[int]:
        return [queue.enqueue(project_id, "race", {}).id for _ in range(jobs)]

    ids = db.with_connection(enqueue_all)
    claims: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claimer(owner: str) -> None:
        start.wait()
        while True:
            row = db.with_connection(queue.claim_next, owner, ("race",), LEASE, 3)
            if row is None:
                return
            with lock:
                claims.append((owner, row.id))

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(job_id for _owner, job_id in claims)
    assert sorted(counts) == sorted(ids)
    assert set(counts.values()) == {1}
