"""The process's job worker: one thread that claims jobs from the database and runs each on a
thread of its own, renews their leases, gives up abandoned ones and runs the periodic expiry.

Handlers are plain functions of a :class:`RunningJob`; they return an :class:`Outcome`, or
return ``None`` after noticing ``job.stopping`` (the process is stopping, or its lease was
lost). A job stopped with the process goes back to the queue for another process; one that
lost its lease is left to its new owner.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from server.db import with_connection
from server.models import Job
from server.services.jobs import queue
from server.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    state: str  # done, failed
    error: str | None = None
    result: Any = None


@dataclass
class RunningJob:
    """A claimed job as its handler sees it."""

    id: int
    project_id: int
    kind: str
    params: dict[str, Any]
    total: int
    owner: str
    settings: Settings
    stopping: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)

    def progress(self, *, done: int = 0, failed: int = 0, total: int | None = None) -> None:
        """Count progress (its own short transaction); a lost lease stops the job."""
        if not with_connection(
            queue.record_progress, self.id, self.owner, done=done, failed=failed, total=total
        ):
            self.lose()

    def lose(self) -> None:
        self.lost.set()
        self.stopping.set()


Handler = Callable[[RunningJob], Outcome | None]
Periodic = Callable[[], None]


def process_owner() -> str:
    """This process's name as a lease owner: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class JobWorker:
    def __init__(
        self,
        settings: Settings,
        handlers: dict[str, Handler],
        periodic: list[Periodic] | None = None,
    ) -> None:
        self.settings = settings
        self.handlers = handlers
        self.periodic = periodic or []
        self.owner = process_owner()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[int, tuple[RunningJob, threading.Thread]] = {}
        self._loop: threading.Thread | None = None

    @property
    def lease(self) -> int:
        return self.settings.job_lease

    def start(self) -> None:
        self._loop = threading.Thread(target=self._main, name="labelgraph-jobs", daemon=True)
        self._loop.start()

    def wake(self) -> None:
        """A job was queued: look for it now rather than at the next poll."""
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------------

    def _main(self) -> None:
        next_beat = next_sweep = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            try:
                if now >= next_beat:
                    self._heartbeat()
                    with_connection(queue.fail_abandoned, self.lease, self.settings.job_attempts)
                    next_beat = now + max(0.2, self.lease / 3)
                if now >= next_sweep:
                    self._run_periodic()
                    next_sweep = now + self.settings.job_sweep_interval
                self._claim_while_free()
            except Exception:
                log.exception("job worker loop failed; retrying")
            self._wake.wait(min(self.settings.job_poll_interval, max(0.05, next_beat - now)))
            self._wake.clear()

    def _claim_while_free(self) -> None:
        kinds = tuple(self.handlers)
        while not self._stopping.is_set():
            with self._lock:
                if len(self._running) >= self.settings.job_concurrency:
                    return
            row: Job | None = with_connection(
                queue.claim_next, self.owner, kinds, self.lease, self.settings.job_attempts
            )
            if row is None:
                return
            job = RunningJob(
                id=row.id,
                project_id=row.project_id,
                kind=row.kind,
                params=dict(row.params or {}),
                total=row.total,
                owner=self.owner,
                settings=self.settings,
            )
            thread = threading.Thread(
                target=self._run, args=(job,), name=f"labelgraph-job-{job.id}", daemon=True
            )
            with self._lock:
                self._running[job.id] = (job, thread)
            log.info("job %d (%s) claimed, attempt %d", job.id, job.kind, row.attempts)
            thread.start()

    def _heartbeat(self) -> None:
        with self._lock:
            jobs = {job_id: job for job_id, (job, _) in self._running.items()}
        if not jobs:
            return
        held = with_connection(queue.heartbeat, list(jobs), self.owner, self.lease)
        for job_id, job in jobs.items():
            if job_id not in held:
                log.warning("job %d: lease lost to another process; stopping it here", job_id)
                job.lose()

    def _run_periodic(self) -> None:
        for task in self.periodic:
            try:
                task()
            except Exception:
                log.exception("periodic background task %s failed", task.__name__)

    def _run(self, job: RunningJob) -> None:
        try:
            outcome = self.handlers[job.kind](job)
            if job.lost.is_set():
                return
            if outcome is None:  # stopped with the process: back to the queue
                with_connection(queue.release, job.id, self.owner)
                return
            with_connection(
                queue.finish, job.id, self.owner, outcome.state, outcome.error, outcome.result
            )
        except Exception:
            log.exception("job %d (%s) failed", job.id, job.kind)
            try:
                with_connection(queue.finish, job.id, self.owner, queue.FAILED, queue.UNEXPECTED)
            except Exception:
                log.exception("cannot mark job %d as failed", job.id)
        finally:
            with self._lock:
                self._running.pop(job.id, None)
            self._wake.set()  # a slot is free

    # -- tests and shutdown ---------------------------------------------------------------

    def running(self) -> list[int]:
        with self._lock:
            return sorted(self._running)

    def close(self, timeout: float) -> None:
        """Stop claiming, ask running jobs to stop, wait up to ``timeout`` for them; jobs
        still running then keep their lease until it runs out."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            running = list(self._running.values())
        for job, _ in running:
            job.stopping.set()
        deadline = time.monotonic() + timeout
        if self._loop is not None:
            self._loop.join(max(0.0, deadline - time.monotonic()))
        for _, thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))
