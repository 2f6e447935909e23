"""ML backends: types, the ``job`` query and the mutations that connect, train and predict."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from pathlib import Path

import strawberry

from schema.context import Info
from schema.export import ExportFile
from schema.permissions import IsAdmin, inherits_access
from schema.scalars import JSON, from_seconds
from server.models import Job as JobRow
from server.models import MLBackend as MLBackendRow
from server.principal import Role
from server.services.export.export_jobs import EXPORT, result_of
from server.services.ml import backends as ml_service
from server.services.ml import job_rows as ml_jobs
from server.services.ml import predictions as ml_predictions
from server.services.ml import training as ml_training


@inherits_access(Role.ADMIN)
@strawberry.type(
    name="MlBackendStatus",
    description="What a backend answers now (GET /health, POST /setup, GET /is_training), "
    "as Label Studio's Model page shows it.",
)
class MLBackendStatus:
    connected: bool
    model_dir: str | None
    model_version: str | None
    is_training: bool | None
    error: str | None


@inherits_access(Role.ADMIN)
@strawberry.type(name="MlBackend", description="An ML backend connected to a project.")
class MLBackend:
    row: strawberry.Private[MLBackendRow]

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field(description="The name the backend sees as `project` in every request.")
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def url(self) -> str:
        return self.row.url

    @strawberry.field(description="The model version its last /setup answer named.")
    def model_version(self) -> str | None:
        return self.row.model_version

    @strawberry.field(
        description="Whether /predict answers one result per task for several tasks "
        "(null: not known yet); prediction jobs batch tasks only then."
    )
    def batch_predict(self) -> bool | None:
        return self.row.batch_predict

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return from_seconds(self.row.created_at)  # type: ignore[return-value]

    @strawberry.field(description="Asks the backend now; bounded by the ML timeouts.")
    def status(self, info: Info) -> MLBackendStatus:
        found = ml_service.backend_status(info.context.ml_runtime().client, self.row)
        return MLBackendStatus(
            connected=found.connected,
            model_dir=found.model_dir,
            model_version=found.model_version,
            is_training=found.is_training,
            error=found.error,
        )


@strawberry.enum(description="queued -> running -> done (or failed).")
class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@inherits_access(Role.ADMIN)
@strawberry.type(
    description="A background job (prediction jobs). Poll `job(id)` until `state` is DONE "
    "or FAILED."
)
class Job:
    row: strawberry.Private[JobRow]

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def project_id(self) -> int:
        return self.row.project_id

    @strawberry.field(description='"predictions" or "export".')
    def kind(self) -> str:
        return self.row.kind

    @strawberry.field(
        description="How many times a process started it (a job whose process "
        "died is started again by another, up to LABELGRAPH_JOB_ATTEMPTS times)."
    )
    def attempts(self) -> int:
        return int(self.row.attempts or 0)

    @strawberry.field(description="An export job's file, once the job is done.")
    def export(self, info: Info) -> ExportFile | None:
        if self.row.kind != EXPORT or self.row.state != "done" or not self.row.result:
            return None
        settings = info.context.project_settings(self.row.project_id)
        return ExportFile(result=result_of(self.row.result, settings.export_dir))

    @strawberry.field
    def state(self) -> JobState:
        return JobState(self.row.state)

    @strawberry.field(description="Tasks the job covers.")
    def total(self) -> int:
        return self.row.total

    @strawberry.field(description="Tasks processed so far.")
    def done(self) -> int:
        return self.row.done

    @strawberry.field(
        description="Processed tasks for which a backend connected at the start gave no "
        "prediction (it failed, timed out or answered no result); all of them when no "
        "backend was connected."
    )
    def failed(self) -> int:
        return self.row.failed

    @strawberry.field(description="done / total, from 0 to 1 (1 once the job is over).")
    def progress(self) -> float:
        if self.row.state in ("done", "failed") or not self.row.total:
            return 1.0 if self.row.state in ("done", "failed") else 0.0
        return min(1.0, self.row.done / self.row.total)

    @strawberry.field(description="What went wrong (backends that failed), if anything.")
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return from_seconds(self.row.created_at)  # type: ignore[return-value]

    @strawberry.field
    def started_at(self) -> dt.datetime | None:
        return from_seconds(self.row.started_at)

    @strawberry.field
    def finished_at(self) -> dt.datetime | None:
        return from_seconds(self.row.finished_at)


@strawberry.enum
class TrainStatus(Enum):
    STARTED = "started"
    NOT_CONNECTED = "not_connected"
    FAILED = "failed"


@inherits_access(Role.ADMIN)
@strawberry.type(name="MlTrainOutcome", description="What one backend did with a training call.")
class MLTrainOutcome:
    name: str
    status: TrainStatus
    job: str | None
    error: str | None


@strawberry.input(name="MlBackendInput")
class MLBackendInput:
    name: str
    url: str


@strawberry.type
class MLQuery:
    @strawberry.field(permission_classes=[IsAdmin], description="A background job by id.")
    def job(self, info: Info, id: int) -> Job:
        return Job(row=info.context.job(id))


@strawberry.type
class MLMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Connect an ML backend: `url` is `URL` or `NAME=URL`, or pass `name`. "
        "Without a name it is the project name and 4 random hex digits. The backend must "
        "answer GET /health.",
    )
    def add_ml_backend(
        self, info: Info, url: str, name: str | None = None, project_id: int | None = None
    ) -> MLBackend:
        pid = info.context.resolve_project_id(project_id)
        client = info.context.ml_runtime().client
        return MLBackend(row=ml_service.add_backend(client, pid, url, name))

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Replace the project's ML backends by this list (in order), without "
        "asking them anything: backends that cannot be reached are kept, as in Label "
        "Studio's settings file.",
    )
    def set_ml_backends(
        self, info: Info, backends: list[MLBackendInput], project_id: int | None = None
    ) -> list[MLBackend]:
        pid = info.context.resolve_project_id(project_id)
        rows = ml_service.set_backends(pid, [(b.name, b.url) for b in backends])
        return [MLBackend(row=row) for row in rows]

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Disconnect an ML backend by name; returns the name.",
    )
    def remove_ml_backend(self, info: Info, name: str, project_id: int | None = None) -> str:
        return ml_service.remove_backend(info.context.resolve_project_id(project_id), name)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Send every task with completions to each backend's /train. A backend "
        "that is not connected or refuses does not stop the others.",
    )
    def train_ml_backends(self, info: Info, project_id: int | None = None) -> list[MLTrainOutcome]:
        ctx = info.context
        pid = ctx.resolve_project_id(project_id)
        path = str(Path(ctx.project_settings(pid).project_dir).resolve())
        outcomes = ml_training.train(ctx.ml_runtime().client, pid, path)
        return [
            MLTrainOutcome(name=o.name, status=TrainStatus(o.status), job=o.job, error=o.error)
            for o in outcomes
        ]

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Predictions for a task (or bare task data) from every backend, not "
        "stored: the task with its `predictions`.",
    )
    def predict_task_data(
        self, info: Info, task: JSON | None = None, project_id: int | None = None
    ) -> JSON:
        ctx = info.context
        pid = ctx.resolve_project_id(project_id)
        return ml_predictions.predict_task_data(ctx.ml_runtime().client, pid, task)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Start a background job that asks every backend for predictions of the "
        "given tasks (or all tasks) and stores them; poll `job(id)`.",
    )
    def start_prediction_job(
        self,
        info: Info,
        task_ids: list[int] | None = None,
        all_tasks: bool = False,
        project_id: int | None = None,
    ) -> Job:
        ctx = info.context
        runtime = ctx.ml_runtime()
        pid = ctx.resolve_project_id(project_id)
        limit = ctx.settings.max_page_size
        row = ml_jobs.create_prediction_job(pid, task_ids, all_tasks, limit)
        runtime.jobs.wake()
        return Job(row=row)
