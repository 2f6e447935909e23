"""Completion and Prediction types; completion mutations."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry

from schema.context import Info
from schema.permissions import IsAdmin, IsAnnotator, inherits_access
from schema.scalars import JSON, from_seconds
from server.ls_json import completion_json, prediction_json
from server.models import Completion as CompletionRow
from server.models import Prediction as PredictionRow
from server.principal import Role
from server.services import projects as project_service
from server.services.tasks import completions as completion_service

if TYPE_CHECKING:
    from schema.auth import User
    from schema.projects import Project


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="A completion (annotation) of a task.")
class Completion:
    row: strawberry.Private[CompletionRow]

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def task_id(self) -> int:
        return self.row.task_id

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return from_seconds(self.row.created_at)  # type: ignore[return-value]

    @strawberry.field
    def updated_at(self) -> dt.datetime:
        return from_seconds(self.row.updated_at)  # type: ignore[return-value]

    @strawberry.field(description="True for cancelled (skipped) completions.")
    def was_cancelled(self) -> bool:
        return self.row.was_cancelled

    @strawberry.field
    def lead_time(self) -> float | None:
        value = self.row.payload.get("lead_time")
        return float(value) if isinstance(value, int | float) else None

    @strawberry.field(description="The list of result regions, as produced by the editor.")
    def result(self) -> JSON:
        return self.row.payload.get("result", [])

    @strawberry.field(description="The completion in Label Studio 0.9's JSON form.")
    def ls_json(self) -> JSON:
        return completion_json(self.row)

    @strawberry.field(
        description="The completion's project as it is once the completion is stored: a "
        "mutation can read the counters and `nextTask` in the same round trip."
    )
    def project(self, info: Info) -> Annotated[Project, strawberry.lazy("schema.projects")]:
        from schema.projects import Project

        ctx = info.context
        ctx.project(self.row.project_id)  # one the request may see (raises NOT_FOUND if not)
        # Read anew: its counters changed with this completion after the request cached it.
        fresh = project_service.get_project(self.row.project_id)
        return Project(row=ctx.remember_project(fresh))

    @strawberry.field(description="The user who made it (null when made without users).")
    def created_by(self, info: Info) -> Annotated[User, strawberry.lazy("schema.auth")] | None:
        from schema.auth import User

        if self.row.completed_by is None:
            return None
        row = info.context.user(self.row.completed_by)
        return User(row=row) if row is not None else None


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="A prediction (pre-annotation) of a task.")
class Prediction:
    row: strawberry.Private[PredictionRow]

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def task_id(self) -> int:
        return self.row.task_id

    @strawberry.field
    def score(self) -> float | None:
        return self.row.score

    @strawberry.field
    def model_version(self) -> str | None:
        return self.row.model_version

    @strawberry.field
    def created_by(self) -> str | None:
        return self.row.created_by

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return from_seconds(self.row.created_at)  # type: ignore[return-value]

    @strawberry.field
    def result(self) -> JSON:
        return self.row.payload.get("result", [])

    @strawberry.field(description="The prediction in Label Studio 0.9's JSON form.")
    def ls_json(self) -> JSON:
        return prediction_json(self.row)


@strawberry.type
class CompletionMutation:
    @strawberry.mutation(
        permission_classes=[IsAnnotator],
        description="Add a completion to a task. `wasCancelled: true` stores a cancelled "
        "(skipped) completion. If `completion.id` names a completion of this task, that "
        "completion is updated instead.",
    )
    def create_completion(
        self, info: Info, task_id: int, completion: JSON, was_cancelled: bool | None = None
    ) -> Completion:
        ctx = info.context
        # The service finds the task (locked) within this scope, NOT_FOUND as ctx.task; only
        # a multi-session request's visibility check needs the task read beforehand.
        project_id = ctx.task(task_id).project_id if ctx.session is not None else ctx.task_scope()
        principal = ctx.principal
        stored = completion_service.store_completion(
            task_id,
            completion,
            was_cancelled,
            project_id,
            completed_by=principal.user_id,
            only_own=principal.role < Role.ADMIN,
        )
        row = stored.completion
        ctx.children.forget(task_id)
        # whether a target storage needs writing was read in the transaction: no lookup now
        ctx.completions_changed(row.project_id, [row.task_id], has_target=stored.has_target)
        return Completion(row=row)

    @strawberry.mutation(
        permission_classes=[IsAnnotator],
        description="Shallow-merge fields into a completion; `createdAt` is kept unless sent.",
    )
    def update_completion(
        self,
        info: Info,
        id: int,
        completion: JSON,
        was_cancelled: bool | None = None,
        task_id: int | None = None,
    ) -> Completion:
        ctx = info.context
        project_id = ctx.own_completion(id, task_id).project_id
        row = completion_service.update_completion(
            id, completion, was_cancelled, task_id, project_id
        )
        ctx.children.forget(row.task_id)
        ctx.completions_changed(row.project_id, [row.task_id])
        return Completion(row=row)

    @strawberry.mutation(
        permission_classes=[IsAnnotator], description="Delete a completion; returns its id."
    )
    def delete_completion(self, info: Info, id: int, task_id: int | None = None) -> int:
        ctx = info.context
        row = ctx.own_completion(id, task_id)
        deleted = completion_service.delete_completion(id, task_id, row.project_id)
        ctx.completions_changed(row.project_id, [row.task_id])
        return deleted

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Delete all completions of a task; returns how many.",
    )
    def delete_task_completions(self, info: Info, task_id: int) -> int:
        ctx = info.context
        task = ctx.task(task_id)
        deleted = completion_service.delete_task_completions(task_id, task.project_id)
        ctx.completions_changed(task.project_id, [task_id])
        return deleted

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Delete all completions of a project; returns how many.",
    )
    def delete_all_completions(self, info: Info, project_id: int | None = None) -> int:
        pid = info.context.resolve_project_id(project_id)
        deleted = completion_service.delete_all_completions(pid)
        info.context.completions_changed(pid, None)
        return deleted
