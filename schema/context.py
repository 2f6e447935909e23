"""Per-request GraphQL context and its batch loaders.

Execution is synchronous on a worker thread (see :mod:`schema`), so the loaders are small
synchronous batchers: every Task object made while resolving a page registers its id, and the
first request for any task's completions or predictions loads them for all registered tasks
with one query per relation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry

from server.errors import DomainError
from server.models import Completion, Prediction, Project
from server.models import Task as TaskRow
from server.services import projects as project_service
from server.services import tasks as task_service
from server.services.label_config import LabelConfig
from server.services.ml_jobs import MLRuntime
from server.settings import Settings


class TaskChildrenLoader:
    """TaskChildrenByTaskIdLoader: completions and predictions for registered task ids."""

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._completions: dict[int, list[Completion]] = {}
        self._predictions: dict[int, list[Prediction]] = {}

    def register(self, tasks: list[TaskRow]) -> None:
        """Note tasks whose children may be asked for; tasks whose counters say they have
        none are settled at once, without a query."""
        for task in tasks:
            if task.id in self._completions:
                continue
            if task.total_completions or task.total_predictions:
                self._pending.add(task.id)
            else:
                self._completions[task.id] = []
                self._predictions[task.id] = []

    def _load(self, task_id: int) -> None:
        if task_id in self._completions:
            return
        self._pending.add(task_id)
        ids = sorted(self._pending)
        children = task_service.load_children(ids)
        for tid in ids:
            self._completions[tid] = children.completions.get(tid, [])
            self._predictions[tid] = children.predictions.get(tid, [])
        self._pending.clear()

    def completions(self, task_id: int) -> list[Completion]:
        self._load(task_id)
        return self._completions[task_id]

    def predictions(self, task_id: int) -> list[Prediction]:
        self._load(task_id)
        return self._predictions[task_id]

    def forget(self, task_id: int) -> None:
        """Drop cached children after a mutation changed them."""
        self._completions.pop(task_id, None)
        self._predictions.pop(task_id, None)


@dataclass
class Context:
    settings: Settings
    project_id: int
    request: Any = None
    response: Any = None
    children: TaskChildrenLoader = field(default_factory=TaskChildrenLoader)
    _projects: dict[int, Project] = field(default_factory=dict)
    # The process's ML client and job runner (lifespan state); None where none runs.
    ml: MLRuntime | None = None

    def project(self, project_id: int | None = None) -> Project:
        """ProjectByIdLoader: a project row, read once per request (None: the current one)."""
        pid = self.resolve_project_id(project_id)
        if pid not in self._projects:
            self._projects[pid] = project_service.get_project(pid)
        return self._projects[pid]

    def remember_project(self, project: Project) -> Project:
        """Cache a project row a mutation returned (its settings or config changed)."""
        self._projects[project.id] = project
        return project

    def label_config(self, project_id: int) -> LabelConfig:
        """The parsed config of a project (parsing is cached per config text)."""
        return project_service.parsed_config(self.project(project_id))

    def ml_runtime(self) -> MLRuntime:
        if self.ml is None:
            raise DomainError("ml_backend", "ML backends are not available here")
        return self.ml

    def resolve_project_id(self, project_id: int | None) -> int:
        return self.project_id if project_id is None else project_id


Info = strawberry.Info[Context, None]
