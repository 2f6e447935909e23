"""The label stream: which unlabeled task to show next (rest-api.md §8).

Each mode is one or two index seeks on ``(project, is_labeled, …)``; nothing scans the table.
The seeks of the sequential and uniform modes (every annotator's ``next``) are
:class:`~server.db.PreparedSelect`: their SQL is built once, not by peewee per request, which
cost several times the seeks themselves (the mixed load of ``bench/load/``).
"""

from __future__ import annotations

import random

import peewee

from server.db import PreparedSelect
from server.models import PREDICTED, SCORED, UNLABELED, Project, Task
from server.services.projects import normalise_sampling
from server.services.tasks.lookup import with_ml_backend_flag


def _candidates(project_id: int) -> peewee.ModelSelect[Task]:
    return Task.select().where(Task.project == project_id, UNLABELED)


def _first(query: peewee.ModelSelect[Task]) -> Task | None:
    task: Task | None = query.first()
    return task


# The seeks that give the task served read whether the project has an ML backend with it
# (server.services.tasks.lookup.has_ml_backend): no second statement for live predictions.
_LOWEST = PreparedSelect(
    Task,
    lambda project_id: with_ml_backend_flag(_candidates(project_id).order_by(Task.id).limit(1)),
    1,
)
_HIGHEST = PreparedSelect(
    Task, lambda project_id: _candidates(project_id).order_by(Task.id.desc()).limit(1), 1
)
_FROM = PreparedSelect(
    Task,
    lambda project_id, pivot: with_ml_backend_flag(
        _candidates(project_id).where(Task.id >= pivot).order_by(Task.id).limit(1)
    ),
    2,
)


def _sequential(project_id: int) -> Task | None:
    return _LOWEST.first(project_id)


def _uniform(project_id: int, rng: random.Random) -> Task | None:
    """A random unlabeled task: pick a random id between the smallest and largest candidate
    and take the first candidate at or after it. Exactly uniform when unlabeled ids are
    contiguous; with gaps, a task after a gap is proportionally more likely."""
    low = _LOWEST.first(project_id)
    if low is None:
        return None
    high = _HIGHEST.first(project_id)
    assert high is not None
    pivot = rng.randint(low.id, high.id)
    return _FROM.first(project_id, pivot) or low


def _by_score(project_id: int, highest: bool) -> Task | None:
    """Unlabeled tasks with predictions, by mean score; ties -> lowest id. Tasks whose
    predictions have no score come next, then tasks without predictions (compat Q-21), so
    every unlabeled task is served eventually."""
    scored = _candidates(project_id).where(SCORED)
    best = (
        scored.select(Task.predictions_score)
        .order_by(Task.predictions_score.desc() if highest else Task.predictions_score)
        .limit(1)
        .scalar()
    )
    if best is not None:
        return _first(scored.where(Task.predictions_score == best).order_by(Task.id))
    unscored = _first(
        _candidates(project_id)
        .where(PREDICTED, Task.predictions_score.is_null(True))
        .order_by(Task.id)
    )
    if unscored is not None:
        return unscored
    # No unlabeled task has a prediction left, so the lowest unlabeled id is the lowest one
    # without predictions: one seek on the unlabeled index instead of a filtered scan.
    return _sequential(project_id)


def next_task(
    project: Project, sampling: str | None = None, rng: random.Random | None = None
) -> Task | None:
    """The next task to label, or None when the stream is empty."""
    project_id = project.id
    mode = normalise_sampling(sampling or project.sampling)
    if mode == "sequential":
        return _sequential(project_id)
    if mode == "uniform":
        return _uniform(project_id, rng or random.Random())
    return _by_score(project_id, highest=mode == "prediction-score-max")
