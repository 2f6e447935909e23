"""Training (ml-backend.md): every backend of a project gets the project's completions on
``/train``; one failing backend never stops the others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.db import released, write_transaction
from server.errors import DomainError
from server.ls_json import completion_json
from server.models import COMPLETED, Completion, MLBackend, Project, Task
from server.services.config.model import UNDEFINED_KEY
from server.services.imports.validation import rename_undefined
from server.services.ml.backends import NO_ML_BACKEND, list_backends
from server.services.ml.client import MLClient
from server.services.projects import get_project, parsed_config

TRAIN_JOB_RUNNING = "CantStartTrainJobError: Can't start new training: Train job is running."
RUNNING_JOB_STATES = ("queued", "started")
CHUNK = 500


@dataclass(frozen=True)
class TrainOutcome:
    name: str
    status: str  # started, not_connected, failed
    job: str | None = None
    error: str | None = None


def completion_documents(project: Project) -> list[dict[str, Any]]:
    """Every task with completions as a completions-store document (export-formats.md §1.1):
    ``id``, ``data``, ``meta`` if any and all its completions, keys sorted, in id order."""
    config = parsed_config(project)
    tasks = list(
        Task.select(Task.id, Task.data, Task.meta)
        .where(Task.project == project.id, COMPLETED)
        .order_by(Task.id)
    )
    documents = []
    for start in range(0, len(tasks), CHUNK):
        chunk = tasks[start : start + CHUNK]
        by_task: dict[int, list[dict[str, Any]]] = {t.id: [] for t in chunk}
        query = (
            Completion.select().where(Completion.task.in_(list(by_task))).order_by(Completion.id)
        )
        for completion in query:
            by_task[completion.task_id].append(completion_json(completion))
        for task in chunk:
            data = task.data
            if isinstance(data, dict) and UNDEFINED_KEY in data:
                data = rename_undefined(data, config)
            document: dict[str, Any] = {
                "completions": by_task[task.id],
                "data": data,
                "id": task.id,
            }
            if task.meta is not None:
                document["meta"] = task.meta
            documents.append(dict(sorted(document.items())))
    return documents


def train(client: MLClient, project_id: int, project_full_path: str) -> list[TrainOutcome]:
    """``POST /api/models/train`` (§5.1) for every backend, each on its own: one that is not
    connected or refuses does not keep the others from training. Job ids they answer are stored
    for the ``/job_status`` check before the next training."""
    project = get_project(project_id)
    backends = list_backends(project_id)
    if not backends:
        raise DomainError("invalid", NO_ML_BACKEND, {"reason": "no_ml_backend"})
    line = parsed_config(project).line
    completions = completion_documents(project)
    params = {"login": "", "password": "", "project_full_path": project_full_path}
    outcomes = []
    with released():
        for backend in backends:
            # Label Studio 0.9's key and today's label-studio-ml SDK's (which reads only
            # "annotations"): the same list, serialised twice.
            body = {
                "completions": completions,
                "annotations": completions,
                "project": backend.name,
                "label_config": line,
                "params": params,
            }
            outcomes.append(_train_one(client, backend, project.name, body))
    jobs = {b.id: o.job for b, o in zip(backends, outcomes, strict=True) if o.job is not None}
    if jobs:
        with write_transaction():
            for backend_id, job in jobs.items():
                MLBackend.update(train_job=job).where(MLBackend.id == backend_id).execute()
    return outcomes


def _train_one(
    client: MLClient, backend: MLBackend, project_name: str, body: dict[str, Any]
) -> TrainOutcome:
    url, name = backend.url, backend.name
    if not client.health(backend).ok:
        message = f'ML backend with URL: "{url}" is not connected.'
        return TrainOutcome(name, "not_connected", error=message)
    if backend.train_job:
        status = client.job_status(backend, backend.train_job)
        answered = status.body if status.ok and isinstance(status.body, dict) else {}
        if answered.get("job_status") in RUNNING_JOB_STATES:
            return TrainOutcome(name, "failed", error=TRAIN_JOB_RUNNING)
    training = client.is_training(backend, name)
    if not training.ok:
        message = (
            "CantValidateIsTraining: Can't validate whether model is training for project "
            f"{project_name}"
        )
        return TrainOutcome(name, "failed", error=message)
    if isinstance(training.body, dict) and training.body.get("is_training") is True:
        return TrainOutcome(name, "failed", error=TRAIN_JOB_RUNNING)
    reply = client.train(backend, body)
    if not reply.ok:
        message = (
            "CantStartTrainJobError: Can't update model: ML backend returns an error: "
            f"{reply.error}"
        )
        return TrainOutcome(name, "failed", error=message)
    job = reply.body.get("job") if isinstance(reply.body, dict) else None
    return TrainOutcome(name, "started", job=None if job is None else str(job))
