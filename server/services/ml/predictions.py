"""Live predictions (ml-backend.md): one prediction round for tasks being served, and
predictions for posted task data.

Read, call, write, as everywhere in :mod:`server.services.ml`. Deliberate differences from Label
Studio 0.9 (docs/compat.md): one failing backend never stops the others (Label Studio stops the
whole round at the first failing ``/setup`` or ``/predict``); a prediction already stored for the
same backend and model version is reused instead of asking ``/predict`` again; live rounds skip
a backend that could not be reached in the last ``ml_retry_after`` seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from server.db import released
from server.errors import DomainError
from server.models import MLBackend, Prediction, now_seconds
from server.services.ml.backends import (
    NO_ML_BACKEND,
    has_backends,
    list_backends,
    setup_version,
)
from server.services.ml.client import MLClient, Reply
from server.services.projects import get_project, parsed_config

log = logging.getLogger(__name__)
NO_TASK_DATA = "no task data found in request json"


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
        if not client.health(backend).ok:
            continue
        setup = client.setup(backend, backend.name, line)
        if not setup.ok:
            continue
        version = setup_version(setup)
        kept = reusable(stored, backend.name, version)
        if kept is not None:
            found.append(kept)
            continue
        results = results_of(client.predict(backend, backend.name, [task_body], version, line))
        if results is None or not isinstance(results[0], dict):
            continue
        found.append(new_prediction(results[0], backend.name, version, project_id, task_id))
    return found


def live_predictions(
    client: MLClient | None,
    project_id: int,
    task_body: dict[str, Any],
    stored: Sequence[Prediction],
    backends_known: bool | None = None,
) -> list[Prediction] | None:
    """Predictions to serve with a task (``GET /api/tasks/<id>``, the label stream), asked now
    and not stored, as Label Studio does (§4.1). None when the project has no backend (one
    indexed query, nothing else; none when the caller read it with the task:
    ``backends_known``). When no backend answers, the stored predictions are served."""
    if client is None:
        return None
    if not (has_backends(project_id) if backends_known is None else backends_known):
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
