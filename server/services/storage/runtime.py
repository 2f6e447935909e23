"""The process's storage worker: source syncs and target writes, in the background.

Requests never wait for a storage: a completion POST (after its transaction committed), an
import with completions or a storage change only note what needs doing
(:meth:`StorageRuntime.sync_source`, :meth:`StorageRuntime.write_completions`). Each project's
work runs on a thread of its own (one per project at a time, at most
``LABELGRAPH_STORAGE_SYNC_CONCURRENCY`` at once), target writes first. A ticker thread re-syncs
cloud and Redis sources every ``LABELGRAPH_STORAGE_SYNC_INTERVAL`` seconds and retries target writes
that failed or found the storage busy. At start-up every target is brought up to date (writes
noted by a process that stopped, or made by the CLI) and every cloud and Redis source synced.

State (``syncing``, last error, last sync) lives in the database: any worker process reports it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from server.db import with_connection
from server.models import Storage
from server.services.storage.backends import ClientCache
from server.services.storage.source_sync import sync_source
from server.services.storage.storage_types import SOURCE, SYNCED_SOURCES, TARGET
from server.services.storage.sync_env import SyncEnv
from server.services.storage.target_sync import write_target
from server.settings import Settings

log = logging.getLogger(__name__)
BATCH_LIMIT = 10_000  # more task ids than this in one note: rewrite everything instead


@dataclass
class Work:
    source: bool = False
    target_all: bool = False
    target_ids: set[int] = field(default_factory=set)

    def merge(self, other: Work) -> None:
        self.source |= other.source
        self.target_all |= other.target_all
        if self.target_all:
            self.target_ids.clear()
        else:
            self.target_ids |= other.target_ids
            if len(self.target_ids) > BATCH_LIMIT:
                self.target_all, self.target_ids = True, set()

    @property
    def target(self) -> bool:
        return self.target_all or bool(self.target_ids)


class StorageRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clients = ClientCache()
        self.env = SyncEnv(settings, self.clients)
        self._cond = threading.Condition()
        self._pending: dict[int, Work] = {}
        self._delayed: dict[int, tuple[float, Work]] = {}
        self._running: set[int] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._slots = threading.BoundedSemaphore(settings.storage_sync_concurrency)
        self._ticker: threading.Thread | None = None

    @classmethod
    def open(cls, settings: Settings, *, start: bool = True) -> StorageRuntime:
        runtime = cls(settings)
        if start:
            runtime._ticker = threading.Thread(
                target=runtime._tick_loop, name="labelgraph-storage-ticker", daemon=True
            )
            runtime._ticker.start()
        return runtime

    # -- notes from requests --------------------------------------------------------------

    def sync_source(self, project_id: int) -> None:
        self._add(project_id, Work(source=True))

    def write_completions(self, project_id: int, task_ids: list[int] | None = None) -> None:
        """Completions of ``task_ids`` changed (None: of any task): update the target."""
        if task_ids is None:
            self._add(project_id, Work(target_all=True))
        elif task_ids:
            self._add(project_id, Work(target_ids=set(task_ids)))

    def storage_changed(self, project_id: int, role: str) -> None:
        """A storage was configured: sync the new source, or write everything to the new
        target."""
        self._add(project_id, Work(source=True) if role == SOURCE else Work(target_all=True))

    def _add(self, project_id: int, work: Work, delay: float = 0.0) -> None:
        if self._stopping.is_set():
            return
        with self._cond:
            if delay > 0:
                due, waiting = self._delayed.get(project_id, (0.0, Work()))
                waiting.merge(work)
                self._delayed[project_id] = (max(due, time.monotonic() + delay), waiting)
                return
            self._pending.setdefault(project_id, Work()).merge(work)
            if project_id in self._running:
                return
            self._running.add(project_id)
            thread = threading.Thread(
                target=self._drain,
                args=(project_id,),
                name=f"labelgraph-storage-{project_id}",
                daemon=True,
            )
            self._threads.add(thread)
        thread.start()

    # -- workers --------------------------------------------------------------------------

    def _drain(self, project_id: int) -> None:
        me = threading.current_thread()
        try:
            with self._slots:
                while not self._stopping.is_set():
                    with self._cond:
                        work = self._pending.pop(project_id, None)
                        if work is None:
                            # Leaving under the lock that _add holds: no note is lost.
                            self._running.discard(project_id)
                            self._threads.discard(me)
                            self._cond.notify_all()
                            return
                    self._run(project_id, work)
        finally:
            with self._cond:
                if me in self._threads:
                    self._running.discard(project_id)
                    self._threads.discard(me)
                    self._cond.notify_all()

    def _run(self, project_id: int, work: Work) -> None:
        retry = self.settings.storage_sync_interval
        if work.target:
            ids = None if work.target_all else sorted(work.target_ids)
            try:
                outcome = write_target(project_id, ids, self.env, self._stopping)
            except Exception:
                log.exception("writing completions of project %d to its target failed", project_id)
                outcome = None
            if outcome is None or outcome.status in ("busy", "failed"):
                if outcome is not None and outcome.error:
                    log.warning("project %d target: %s", project_id, outcome.error)
                pending = Work(target_all=work.target_all, target_ids=set(work.target_ids))
                self._add(project_id, pending, delay=retry)
        if work.source:
            try:
                outcome = sync_source(project_id, self.env, self._stopping)
                if outcome.status == "busy":  # another process syncs it: try again later
                    self._add(project_id, Work(source=True), delay=retry)
                elif outcome.status == "done" and outcome.added:
                    log.info(
                        "project %d: %d tasks synced from its source", project_id, outcome.added
                    )
                elif outcome.error:
                    log.warning("project %d source: %s", project_id, outcome.error)
            except Exception:
                log.exception("syncing the source of project %d failed", project_id)

    # -- ticker ---------------------------------------------------------------------------

    def _scan(self, *, startup: bool) -> None:
        rows = with_connection(
            lambda: list(
                Storage.select(Storage.project, Storage.role, Storage.type).tuples().iterator()
            )
        )
        for project_id, role, type_name in rows:
            if role == SOURCE and type_name in SYNCED_SOURCES:
                self.sync_source(project_id)
            elif role == TARGET and startup:
                self.write_completions(project_id, None)

    def _tick_loop(self) -> None:
        interval = self.settings.storage_sync_interval
        next_scan = time.monotonic()
        startup = True
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= next_scan:
                try:
                    self._scan(startup=startup)
                except Exception:
                    log.exception("storage scan failed")
                startup = False
                next_scan = now + interval
            with self._cond:
                due = [pid for pid, (when, _) in self._delayed.items() if when <= now]
                ready = [(pid, self._delayed.pop(pid)[1]) for pid in due]
                wake = min([next_scan, *(when for when, _ in self._delayed.values())])
            for project_id, work in ready:
                self._add(project_id, work)
            self._stopping.wait(max(0.05, min(wake - time.monotonic(), interval)))

    # -- tests and shutdown ---------------------------------------------------------------

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no work is pending or running (delayed retries aside); False on
        timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float) -> None:
        self._stopping.set()
        deadline = time.monotonic() + timeout
        if self._ticker is not None:
            self._ticker.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.clients.close()
