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

from server.models import Completion, Prediction
from server.services import projects as project_service
from server.services import tasks as task_service
from server.services.label_config import LabelConfig
from server.settings import Settings


class TaskChildrenLoader:
    """TaskChildrenByTaskIdLoader: completions and predictions for registered task ids."""

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._completions: dict[int, list[Completion]] = {}
        self._predictions: dict[int, list[Prediction]] = {}

    def register(self, task_ids: list[int]) -> None:
        self._pending.update(t for t in task_ids if t not in self._completions)

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
    _configs: dict[int, LabelConfig] = field(default_factory=dict)

    def label_config(self, project_id: int) -> LabelConfig:
        """ConfigByProjectIdLoader: the parsed config of a project, once per request."""
        if project_id not in self._configs:
            project = project_service.get_project(project_id)
            self._configs[project_id] = project_service.parsed_config(project)
        return self._configs[project_id]

    def forget_config(self, project_id: int) -> None:
        self._configs.pop(project_id, None)

    def resolve_project_id(self, project_id: int | None) -> int:
        return self.project_id if project_id is None else project_id


Info = strawberry.Info[Context, None]
