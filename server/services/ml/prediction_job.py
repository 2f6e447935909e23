"""Running one prediction job: predictions for all tasks or a list of tasks, stored.

``mode=all_tasks`` and ``mode=specific_tasks`` (ml-backend.md §4.1) run as jobs, on a thread of
their own in this process (:mod:`server.services.ml.job_runner`). A job:

1. asks every backend ``/health`` and ``/setup`` once (a failing backend is left out, the others
   go on; the model versions are remembered);
2. reads the tasks in batches of ``ml_batch_size`` and hands them to at most
   ``ml_job_concurrency`` worker threads. Per batch and backend, tasks that already have a
   prediction of that backend and model version keep it; the others go to ``/predict``, several
   tasks per call when the backend answers one result per task (learned on the first call and
   remembered), one task per call otherwise;
3. writes each batch's predictions and the job's progress in one short transaction.

No database connection is held while a backend is called. A backend that cannot be reached
during the job is given up for the rest of it (its tasks count as failed), so a dead backend
costs one timeout, not one per task.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from server.db import bulk_insert, with_connection, write_transaction
from server.ls_json import mean_score
from server.models import Job, MLBackend, Prediction, Project, Task, dump_json, now_seconds
from server.services.config.model import UNDEFINED_KEY
from server.services.imports.validation import rename_undefined
from server.services.ml.backends import (
    list_backends,
    remember_versions,
    setup_version,
)
from server.services.ml.client import MLClient
from server.services.ml.job_rows import STOPPED, announce, get_job, set_state
from server.services.ml.predictions import new_prediction, results_of, reusable
from server.services.projects import get_project, lock_project, parsed_config
from server.services.tasks.tasks import PREDICTION_COLUMNS
from server.settings import Settings


@dataclass
class ActiveBackend:
    """A backend that answered ``/health`` and ``/setup`` at the start of the job."""

    row: MLBackend
    version: str | None
    batch: bool | None
    gave_up: str | None = None
    first_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_error(self, message: str) -> None:
        with self.lock:
            if self.first_error is None:
                self.first_error = message


@dataclass
class Plan:
    job_id: int
    project_id: int
    line: str
    params: dict[str, Any]
    total: int
    backends: list[MLBackend]
    config: Any


class PredictionJob:
    def __init__(
        self, client: MLClient, settings: Settings, job_id: int, stopping: threading.Event
    ) -> None:
        self.client = client
        self.settings = settings
        self.job_id = job_id
        self.stopping = stopping

    def run(self) -> None:
        plan = with_connection(self._plan)
        active, errors = self._connect(plan.backends, plan.line)
        with_connection(remember_versions, {a.row.id: a.version for a in active if a.version})
        if not active:
            with_connection(self._count, plan.total, plan.total)
            message = "No ML backend is connected" + (": " + "; ".join(errors) if errors else "")
            with_connection(set_state, self.job_id, "done", message)
            return
        workers = self.settings.ml_job_concurrency
        with ThreadPoolExecutor(workers, thread_name_prefix=f"job-{self.job_id}") as pool:
            pending: set[Future[None]] = set()
            for ids in self._batches(plan):
                if self.stopping.is_set():
                    break
                if len(pending) >= workers:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        future.result()
                pending.add(pool.submit(self._batch, plan, active, ids))
            for future in pending:
                future.result()
        learned = {a.row.id: a.batch for a in active if a.batch is not None}
        with_connection(_remember_batching, learned)
        if self.stopping.is_set():
            with_connection(set_state, self.job_id, "failed", STOPPED)
            return
        for backend in active:
            if backend.gave_up:
                errors.append(f"{backend.row.name}: gave up after {backend.gave_up}")
            elif backend.first_error:
                errors.append(f"{backend.row.name}: {backend.first_error}")
        with_connection(set_state, self.job_id, "done", "; ".join(errors) or None)

    # -- reads and writes (each its own short database access) -----------------------------

    def _plan(self) -> Plan:
        job = get_job(self.job_id)
        project = get_project(job.project_id)
        config = parsed_config(project)
        backends = list_backends(project.id)
        set_state(self.job_id, "running")
        return Plan(
            self.job_id, project.id, config.line, dict(job.params), job.total, backends, config
        )

    def _batches(self, plan: Plan) -> Iterator[list[int]]:
        size = self.settings.ml_batch_size
        if "task_ids" in plan.params:
            ids: list[int] = plan.params["task_ids"]
            for start in range(0, len(ids), size):
                yield ids[start : start + size]
            return
        last, up_to = 0, int(plan.params.get("last_task_id") or 0)

        def page(after: int) -> list[int]:
            query = Task.select(Task.id).where(
                Task.project == plan.project_id, Task.id > after, Task.id <= up_to
            )
            return list(query.order_by(Task.id).limit(size).scalars())

        while ids := with_connection(page, last):
            yield ids
            last = ids[-1]

    def _read(
        self, plan: Plan, ids: list[int]
    ) -> tuple[list[dict[str, Any]], dict[int, list[Prediction]]]:
        rows = (
            Task.select(Task.id, Task.data, Task.meta)
            .where(Task.project == plan.project_id, Task.id.in_(ids))
            .order_by(Task.id)
        )
        bodies = []
        for row in rows:
            data = row.data
            if isinstance(data, dict) and UNDEFINED_KEY in data:
                data = rename_undefined(data, plan.config)
            body: dict[str, Any] = {"id": row.id, "data": data}
            if row.meta is not None:
                body["meta"] = row.meta
            body["predictions"] = []
            bodies.append(body)
        stored: dict[int, list[Prediction]] = {task_id: [] for task_id in ids}
        query = Prediction.select().where(Prediction.task.in_(ids)).order_by(Prediction.id)
        for prediction in query:
            stored[prediction.task_id].append(prediction)
        return bodies, stored

    def _count(self, done: int, failed: int) -> None:
        with write_transaction():
            Job.update(done=Job.done + done, failed=Job.failed + failed).where(
                Job.id == self.job_id
            ).execute()
            announce(self.job_id)

    # -- one batch --------------------------------------------------------------------------

    def _batch(self, plan: Plan, active: list[ActiveBackend], ids: list[int]) -> None:
        if self.stopping.is_set():
            return
        bodies, stored = with_connection(self._read, plan, ids)
        per_backend: list[dict[int, Prediction]] = []
        failed: set[int] = set()
        for backend in active:
            found: dict[int, Prediction] = {}
            asked = []
            for body in bodies:
                kept = reusable(stored[body["id"]], backend.row.name, backend.version)
                if kept is not None:
                    found[body["id"]] = kept
                else:
                    asked.append(body)
            for task_id, result in self._predict(plan, backend, asked).items():
                found[task_id] = new_prediction(
                    result, backend.row.name, backend.version, plan.project_id, task_id
                )
            failed.update(body["id"] for body in bodies if body["id"] not in found)
            per_backend.append(found)
        writes: dict[int, list[Prediction]] = {}
        for body in bodies:
            task_id = body["id"]
            predictions = [found[task_id] for found in per_backend if task_id in found]
            unchanged = [p.id for p in predictions] == [p.id for p in stored[task_id]]
            if predictions and not unchanged:
                writes[task_id] = predictions
        with_connection(self._write, plan, writes, len(ids), len(failed))

    def _predict(
        self, plan: Plan, backend: ActiveBackend, bodies: list[dict[str, Any]]
    ) -> dict[int, dict[str, Any]]:
        """Results by task id from ``/predict``: one call for the batch when the backend takes
        several tasks, else one call per task."""
        if not bodies or backend.gave_up:
            return {}
        row, name = backend.row, backend.row.name
        if len(bodies) > 1 and backend.batch is not False:
            reply = self.client.predict(row, name, bodies, backend.version, plan.line)
            results = results_of(reply)
            if reply.unreachable:
                backend.gave_up = reply.error
                return {}
            if results is not None and len(results) == len(bodies):
                backend.batch = True
                return {b["id"]: r for b, r in zip(bodies, results, strict=True) if _is_obj(r)}
            if results is not None:
                backend.batch = False  # answered for fewer tasks: one task per call
        found = {}
        for body in bodies:
            if self.stopping.is_set() or backend.gave_up:
                break
            reply = self.client.predict(row, name, [body], backend.version, plan.line)
            if reply.unreachable:
                backend.gave_up = reply.error
                break
            results = results_of(reply)
            if results is not None and _is_obj(results[0]):
                found[body["id"]] = results[0]
            else:
                backend.note_error(f"/predict failed: {reply.error or 'no results'}")
        return found

    def _write(
        self, plan: Plan, writes: dict[int, list[Prediction]], done: int, failed: int
    ) -> None:
        """Replace the predictions of the tasks in ``writes`` and count the batch, in one
        transaction. Tasks deleted meanwhile are skipped."""
        with write_transaction():
            if writes:
                lock_project(plan.project_id)
                current = {
                    row[0]: row[1]
                    for row in Task.select(Task.id, Task.total_predictions)
                    .where(Task.project == plan.project_id, Task.id.in_(list(writes)))
                    .tuples()
                    .iterator()
                }
                ids = [task_id for task_id in writes if task_id in current]
                Prediction.delete().where(Prediction.task.in_(ids)).execute()
                now = now_seconds()
                rows = [
                    (
                        plan.project_id,
                        task_id,
                        p.score,
                        p.model_version,
                        p.created_by,
                        now,
                        dump_json(p.payload),
                    )
                    for task_id in ids
                    for p in writes[task_id]
                ]
                bulk_insert(Prediction, PREDICTION_COLUMNS, rows)
                delta = 0
                for task_id in ids:
                    payloads = [p.payload for p in writes[task_id]]
                    Task.update(
                        total_predictions=len(payloads),
                        predictions_score=mean_score(payloads),
                        updated_at=now,
                    ).where(Task.id == task_id).execute()
                    delta += len(payloads) - current[task_id]
                if delta:
                    Project.update(prediction_count=Project.prediction_count + delta).where(
                        Project.id == plan.project_id
                    ).execute()
            Job.update(done=Job.done + done, failed=Job.failed + failed).where(
                Job.id == self.job_id
            ).execute()

    # -- start ------------------------------------------------------------------------------

    def _connect(
        self, backends: list[MLBackend], line: str
    ) -> tuple[list[ActiveBackend], list[str]]:
        active, errors = [], []
        for backend in backends:
            health = self.client.health(backend)
            if not health.ok:
                errors.append(f"{backend.name}: not connected ({health.error})")
                continue
            setup = self.client.setup(backend, backend.name, line)
            if not setup.ok:
                errors.append(f"{backend.name}: /setup failed ({setup.error})")
                continue
            active.append(ActiveBackend(backend, setup_version(setup), backend.batch_predict))
        return active, errors


def _is_obj(value: Any) -> bool:
    return isinstance(value, dict)


def _remember_batching(learned: dict[int, bool]) -> None:
    if not learned:
        return
    with write_transaction():
        for backend_id, batch in learned.items():
            MLBackend.update(batch_predict=batch).where(MLBackend.id == backend_id).execute()
