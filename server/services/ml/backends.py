"""ML backends of a project (ml-backend.md): connecting, listing, removing, live predictions,
predictions for posted data, training, and the notice sent when all tasks are deleted.

Every function that calls a backend follows "read, call, write": database reads first, then the
HTTP calls with the connection handed back to the pool (:func:`server.db.released`), then short
write transactions. No backend is ever called inside a transaction.

Deliberate differences from Label Studio 0.9 (docs/compat.md): one failing backend never stops
the others (Label Studio stops the whole round at the first failing ``/setup`` or ``/predict``);
a prediction already stored for the same backend and model version is reused instead of asking
``/predict`` again; live rounds skip a backend that could not be reached in the last
``ml_retry_after`` seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from server.db import released, write_transaction
from server.errors import DomainError
from server.ls_json import completion_json
from server.models import COMPLETED, Completion, MLBackend, Prediction, Project, Task, now_seconds
from server.services.imports.validation import UNDEFINED_KEY, rename_undefined
from server.services.ml.client import MLClient, Reply
from server.services.projects import get_project, lock_project, parsed_config

log = logging.getLogger(__name__)

NO_ML_BACKEND = "No ML backend"
NO_TASK_DATA = "no task data found in request json"
TRAIN_JOB_RUNNING = "CantStartTrainJobError: Can't start new training: Train job is running."
RUNNING_JOB_STATES = ("queued", "started")
CHUNK = 500


# --- connecting, listing, removing ---------------------------------------------------------


def parse_backend_spec(spec: str, project_name: str) -> tuple[str, str]:
    """(name, url) from ``URL`` or ``NAME=URL`` (§1.2): ``NAME=URL`` when the string contains
    ``=http`` (split at the first ``=``); otherwise the name is the project name followed by
    4 random hex digits."""
    if "=http" in spec:
        name, url = spec.split("=", 1)
        return name.strip(), url.strip()
    return project_name + uuid.uuid4().hex[:4], spec.strip()


def check_url(url: str) -> None:
    parsed = urlparse(url)
    if not parsed.scheme or not parsed.netloc:
        raise DomainError(
            "invalid", f'Specified string "{url}" doesn\'t look like URL.', {"url": url}
        )


def _check_name(name: str) -> None:
    if not name or len(name) > 255:
        raise DomainError(
            "invalid", "An ML backend name must have 1 to 255 characters", {"field": "name"}
        )


def list_backends(project_id: int) -> list[MLBackend]:
    """The project's backends in the order they were added (Label Studio's settings order)."""
    return list(MLBackend.select().where(MLBackend.project == project_id).order_by(MLBackend.id))


def _duplicate(project_id: int, name: str) -> DomainError | None:
    if MLBackend.get_or_none(MLBackend.project == project_id, MLBackend.name == name) is None:
        return None
    return DomainError("conflict", f'ML backend with name "{name}" already exists', {"name": name})


def add_backend(
    client: MLClient | None,
    project_id: int,
    spec: str,
    name: str | None = None,
    *,
    check_connection: bool = True,
) -> MLBackend:
    """Connect a backend given as ``URL`` or ``NAME=URL`` (or ``URL`` and ``name``). With
    ``check_connection`` (PATCH /api/project, GraphQL) it must answer ``GET /health``; the CLI
    adds backends without asking them (§1.2)."""
    project = get_project(project_id)
    if name is None:
        # The last segment of the name (multi-session names are <user>/<project>).
        name, url = parse_backend_spec(spec, project.name.rsplit("/", 1)[-1])
    else:
        url = spec.strip()
    _check_name(name)
    check_url(url)
    if (error := _duplicate(project_id, name)) is not None:
        raise error
    if check_connection:
        if client is None:
            raise DomainError("ml_backend", "ML backends cannot be reached from here")
        with released():
            reply = client.health(url)
        if not reply.ok:
            message = f'ML backend with URL: "{url}" is not connected.'
            raise DomainError("invalid", message, {"url": url, "reason": reply.error})
    with write_transaction():
        lock_project(project_id)
        if (error := _duplicate(project_id, name)) is not None:
            raise error
        return MLBackend.create(project=project_id, name=name, url=url)


def set_backends(project_id: int, entries: Sequence[tuple[str, str]]) -> list[MLBackend]:
    """Replace the project's backends by ``entries`` ((name, url) pairs, in order), as editing
    ``ml_backends`` in Label Studio's settings file does: not asked for ``/health`` (backends
    that cannot be reached are kept, §1.1). What is known of a backend with the same name and
    URL (model version, batching, training job) is kept."""
    names = [name for name, _url in entries]
    for name, url in entries:
        _check_name(name)
        check_url(url)
    if len(set(names)) != len(names):
        raise DomainError("invalid", "ML backend names must be unique", {"field": "name"})
    with write_transaction():
        lock_project(project_id)
        known = {(b.name, b.url): b for b in list_backends(project_id)}
        MLBackend.delete().where(MLBackend.project == project_id).execute()
        created = []
        for name, url in entries:
            old = known.get((name, url))
            created.append(
                MLBackend.create(
                    project=project_id,
                    name=name,
                    url=url,
                    model_version=old.model_version if old else None,
                    batch_predict=old.batch_predict if old else None,
                    train_job=old.train_job if old else None,
                )
            )
        return created


def remove_backend(project_id: int, name: str) -> str:
    with write_transaction():
        backend = MLBackend.get_or_none(MLBackend.project == project_id, MLBackend.name == name)
        if backend is None:
            message = f'Can\'t remove ML backend with name "{name}": not found.'
            raise DomainError("not_found", message, {"name": name})
        backend.delete_instance()
        return name


@dataclass(frozen=True)
class BackendStatus:
    """What Label Studio's Model page shows for a backend (§5.3)."""

    connected: bool
    model_dir: str | None = None
    model_version: str | None = None
    is_training: bool | None = None
    error: str | None = None


def backend_status(client: MLClient, backend: MLBackend) -> BackendStatus:
    """``GET /health``, then ``POST /setup`` and ``GET /is_training`` (§5.3); the model version
    the backend answered is remembered."""
    project = get_project(backend.project_id)
    line = parsed_config(project).line
    with released():
        health = client.health(backend.url)
        if not health.ok:
            return BackendStatus(connected=False, error=health.error)
        body = health.body if isinstance(health.body, dict) else {}
        model_dir = body.get("model_dir")
        model_dir = None if model_dir is None else str(model_dir).rstrip("/").rsplit("/", 1)[-1]
        setup = client.setup(backend.url, backend.name, line)
        training = client.is_training(backend.url, backend.name)
    version = setup_version(setup)
    error = None if setup.ok else f"/setup failed: {setup.error}"
    is_training = None
    if training.ok and isinstance(training.body, dict):
        is_training = bool(training.body.get("is_training"))
    elif error is None:
        error = f"/is_training failed: {training.error}"
    if version is not None and version != backend.model_version:
        remember_versions({backend.id: version})
    return BackendStatus(True, model_dir, version, is_training, error)


def remember_versions(versions: dict[int, str]) -> None:
    """Store the model versions backends answered to ``/setup`` (a short write)."""
    if not versions:
        return
    with write_transaction():
        for backend_id, version in versions.items():
            MLBackend.update(model_version=version).where(MLBackend.id == backend_id).execute()


# --- one prediction round ------------------------------------------------------------------


def setup_version(reply: Reply) -> str | None:
    """The ``model_version`` a successful ``/setup`` answered (None if it named none)."""
    if not reply.ok or not isinstance(reply.body, dict):
        return None
    version = reply.body.get("model_version")
    return None if version is None else str(version)


def results_of(reply: Reply) -> list[Any] | None:
    """The ``results`` list of a ``/predict`` answer; None for an error or no results."""
    if not reply.ok or not isinstance(reply.body, dict):
        return None
    results = reply.body.get("results")
    return results if isinstance(results, list) and results else None


def created_date() -> str:
    """Label Studio's ``created_date`` form (ISO 8601, microseconds, no zone), in UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def new_prediction(
    result: dict[str, Any], backend_name: str, version: str | None, project_id: int, task_id: Any
) -> Prediction:
    """An unsaved prediction from a backend's answer for one task: stored as returned, plus
    ``created_by`` (the backend name), ``created_date`` and, unless the backend gave one,
    ``model_version`` (the one ``/setup`` answered)."""
    payload = dict(result)
    payload["created_by"] = backend_name
    payload["created_date"] = created_date()
    if version is not None:
        payload.setdefault("model_version", version)
    score = payload.get("score")
    model_version = payload.get("model_version")
    return Prediction(
        project=project_id,
        task=task_id,
        score=float(score)
        if isinstance(score, int | float) and not isinstance(score, bool)
        else None,
        model_version=None if model_version is None else str(model_version),
        created_by=backend_name,
        created_at=now_seconds(),
        payload=payload,
    )


def reusable(
    stored: Sequence[Prediction], backend_name: str, version: str | None
) -> Prediction | None:
    """A stored prediction made by this backend with this model version, if any."""
    if version is None:
        return None
    for prediction in stored:
        if prediction.created_by == backend_name and prediction.model_version == version:
            return prediction
    return None


def predict_round(
    client: MLClient,
    backends: Sequence[MLBackend],
    line: str,
    task_body: dict[str, Any],
    stored: Sequence[Prediction],
    project_id: int,
    *,
    skip_recently_failed: bool = True,
) -> list[Prediction]:
    """One task through every backend in order (§4.2): ``/health``, ``/setup``, then a stored
    prediction of the same backend and model version or ``/predict``. A backend that fails is
    skipped and the round goes on. Returns the backends' predictions, in backend order."""
    found: list[Prediction] = []
    task_id = task_body.get("id")
    for backend in backends:
        if skip_recently_failed and client.recently_failed(backend.url):
            continue
        if not client.health(backend.url).ok:
            continue
        setup = client.setup(backend.url, backend.name, line)
        if not setup.ok:
            continue
        version = setup_version(setup)
        kept = reusable(stored, backend.name, version)
        if kept is not None:
            found.append(kept)
            continue
        results = results_of(client.predict(backend.url, backend.name, [task_body], version, line))
        if results is None or not isinstance(results[0], dict):
            continue
        found.append(new_prediction(results[0], backend.name, version, project_id, task_id))
    return found


def live_predictions(
    client: MLClient | None,
    project_id: int,
    task_body: dict[str, Any],
    stored: Sequence[Prediction],
) -> list[Prediction] | None:
    """Predictions to serve with a task (``GET /api/tasks/<id>``, the label stream), asked now
    and not stored, as Label Studio does (§4.1). None when the project has no backend (one
    indexed query, nothing else). When no backend answers, the stored predictions are served."""
    if client is None:
        return None
    backends = list_backends(project_id)
    if not backends:
        return None
    project = get_project(project_id)
    line = parsed_config(project).line
    body = {**task_body, "predictions": []}
    with client.live_slot() as free:
        if not free:
            log.warning("too many live prediction rounds at once: serving stored predictions")
            return list(stored)
        with released():
            found = predict_round(client, backends, line, body, stored, project.id)
    return found or list(stored)


def predict_task_data(client: MLClient, project_id: int, posted: Any) -> dict[str, Any]:
    """``mode=data`` (§4.4): predictions for a posted task (or bare task data), not stored."""
    project = get_project(project_id)
    backends = list_backends(project_id)
    if not backends:
        raise DomainError("invalid", NO_ML_BACKEND, {"reason": "no_ml_backend"})
    if posted is None:
        raise DomainError("invalid", NO_TASK_DATA, {"field": "task"})
    task = dict(posted) if isinstance(posted, dict) and "data" in posted else {"data": posted}
    given = task.get("predictions")
    stored = [
        Prediction(
            created_by=p.get("created_by"),
            model_version=None if p.get("model_version") is None else str(p["model_version"]),
            payload=p,
        )
        for p in (given if isinstance(given, list) else [])
        if isinstance(p, dict)
    ]
    line = parsed_config(project).line
    body = {**task, "predictions": []}
    found: list[Prediction] = []
    with client.live_slot() as free:
        if free:
            with released():
                found = predict_round(client, backends, line, body, stored, project_id)
    # Posted predictions are kept only when no backend answered (§4.2).
    task["predictions"] = [p.payload for p in found] if found else [p.payload for p in stored]
    return dict(sorted(task.items()))


def notify_tasks_deleted(client: MLClient | None, project_id: int) -> None:
    """``POST /delete`` to every backend after all tasks were deleted (§3.7); errors are only
    logged (by the client)."""
    if client is None:
        return
    backends = list_backends(project_id)
    with released():
        for backend in backends:
            if not client.recently_failed(backend.url):
                client.delete(backend.url, backend.name)


# --- training ------------------------------------------------------------------------------


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
            body = {
                "completions": completions,
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
    if not client.health(url).ok:
        message = f'ML backend with URL: "{url}" is not connected.'
        return TrainOutcome(name, "not_connected", error=message)
    if backend.train_job:
        status = client.job_status(url, backend.train_job)
        answered = status.body if status.ok and isinstance(status.body, dict) else {}
        if answered.get("job_status") in RUNNING_JOB_STATES:
            return TrainOutcome(name, "failed", error=TRAIN_JOB_RUNNING)
    training = client.is_training(url, name)
    if not training.ok:
        message = (
            "CantValidateIsTraining: Can't validate whether model is training for project "
            f"{project_name}"
        )
        return TrainOutcome(name, "failed", error=message)
    if isinstance(training.body, dict) and training.body.get("is_training") is True:
        return TrainOutcome(name, "failed", error=TRAIN_JOB_RUNNING)
    reply = client.train(url, body)
    if not reply.ok:
        message = (
            "CantStartTrainJobError: Can't update model: ML backend returns an error: "
            f"{reply.error}"
        )
        return TrainOutcome(name, "failed", error=message)
    job = reply.body.get("job") if isinstance(reply.body, dict) else None
    return TrainOutcome(name, "started", job=None if job is None else str(job))
