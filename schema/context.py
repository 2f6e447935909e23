"""Per-request GraphQL context and its batch loaders.

Execution is synchronous on a worker thread (see :mod:`schema`), so the loaders are small
synchronous batchers: every Task object made while resolving a page registers its id, and the
first request for any task's completions or predictions loads them for all registered tasks
with one query per relation (asking each only for the tasks whose counters say they have some).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from server.errors import DomainError, not_found
from server.models import Completion, Job, Prediction, Project, Storage
from server.models import Task as TaskRow
from server.multi_session import SessionProject, session_project
from server.principal import OPEN, SCOPE_KEY, Principal
from server.services import projects as project_service
from server.services import session_projects
from server.services.config.model import LabelConfig
from server.services.ml import job_rows as ml_jobs
from server.services.ml.job_runner import MLRuntime
from server.services.storage import config as storage_config
from server.services.storage import presign
from server.services.storage.presign import DataResolver
from server.services.storage.runtime import StorageRuntime
from server.services.tasks import completions as completion_service
from server.services.tasks import lookup as task_lookup
from server.services.tasks import tasks as task_service
from server.settings import Settings
from server.state_values import state_value


class TaskChildrenLoader:
    """TaskChildrenByTaskIdLoader: completions and predictions for registered task ids."""

    def __init__(self) -> None:
        # Registered task id -> (ask for its completions, ask for its predictions): whether
        # its counters say it has any (a page's tasks mostly have no predictions).
        self._pending: dict[int, tuple[bool, bool]] = {}
        self._completions: dict[int, list[Completion]] = {}
        self._predictions: dict[int, list[Prediction]] = {}

    def register(self, tasks: list[TaskRow]) -> None:
        """Note tasks whose children may be asked for; tasks whose counters say they have
        none are settled at once, without a query, and the queries leave out the tasks their
        counters say have no completions (predictions)."""
        for task in tasks:
            if task.id in self._completions:
                continue
            completions, predictions = bool(task.total_completions), bool(task.total_predictions)
            if completions or predictions:
                self._pending[task.id] = (completions, predictions)
            else:
                self._completions[task.id] = []
                self._predictions[task.id] = []

    def _load(self, task_id: int) -> None:
        if task_id in self._completions:
            return
        self._pending.setdefault(task_id, (True, True))  # not registered: ask for both
        ids = sorted(self._pending)
        pending = self._pending
        children = task_service.load_children(
            [i for i in ids if pending[i][0]], [i for i in ids if pending[i][1]]
        )
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
    # The current project; None in multi-session mode until a resolver asks for it (then the
    # session's project; stored by the first mutation that needs it).
    project_id: int | None = None
    request: Any = None
    response: Any = None
    children: TaskChildrenLoader = field(default_factory=TaskChildrenLoader)
    _projects: dict[int, Project] = field(default_factory=dict)
    # The process's ML client and job runner (lifespan state); None where none runs.
    ml: MLRuntime | None = None
    # The process's storage worker (lifespan state); None where none runs.
    storage: StorageRuntime | None = None
    # Multi-session mode: the request's session (user, current project).
    session: SessionProject | None = None
    # REST routes reach only the current project's tasks and completions by id.
    confined: bool = False
    # True while a mutation runs (set by SessionWrites): only writes store a session's project.
    writes: bool = False
    # Who is calling (server.authentication); in-process callers (tests, the CLI) are OPEN.
    principal: Principal = OPEN
    _users: dict[int, Any] = field(default_factory=dict)
    _storages: dict[int, dict[str, Storage]] = field(default_factory=dict)
    _resolvers: dict[int, DataResolver | None] = field(default_factory=dict)

    # --- which projects this request reaches ----------------------------------------------
    # Every id a resolver is given (project, task, completion, job; staged imports and ML
    # backends through their project) is resolved here. In multi-session mode a project the
    # session may not see is NOT_FOUND, exactly as an unknown id, so ids reveal nothing.

    def project(self, project_id: int | None = None) -> Project:
        """ProjectByIdLoader: a project row the request may see, read once per request
        (None: the current one)."""
        if project_id is None:
            return self._load(self.resolve_project_id(None))
        row = self._load(project_id)
        if self.session is not None and not self.session.may_see(row):
            raise not_found("Project", project_id)
        return row

    def project_by_uuid(self, project_uuid: str) -> Project:
        """A project by uuid; in multi-session mode only one the session may see (another
        user's project is shared by selecting it: ``selectProject``)."""
        if self.session is not None and self.session.session.get("project") == project_uuid:
            return self.project(None)
        row = project_service.get_project_by_uuid(project_uuid)
        if self.session is not None and not self.session.may_see(row):
            raise not_found("Project", project_uuid)
        return self._projects.setdefault(row.id, row)

    def visible_projects(self) -> list[Project]:
        """All projects; in multi-session mode the session's own, shared and current ones."""
        if self.session is None:
            return project_service.list_projects()
        rows = session_projects.session_projects(self.session.user, self.session.shared)
        current = self.project(None)
        return rows if current.id != session_projects.UNSAVED_ID else [*rows, current]

    def resolve_project_id(self, project_id: int | None) -> int:
        """The id of a project the request may see (None: the current project; a mutation
        stores a session's project that is not stored yet)."""
        if project_id is not None:
            if self.session is None:
                return project_id  # single-project mode: services answer unknown ids
            return self.project(project_id).id
        if self.project_id is None:
            if self.session is None:
                raise DomainError("not_found", "There is no current project here")
            self.project_id = self._session_project_id(store=self.writes)
        elif self.project_id == session_projects.UNSAVED_ID and self.writes:
            self.project_id = self._session_project_id(store=True)
        return self.project_id

    def _session_project_id(self, *, store: bool) -> int:
        assert self.session is not None
        if store:
            return self.session.current()[0]
        stored = self.session.stored()
        if stored is not None:
            return stored[0]
        self._projects[session_projects.UNSAVED_ID] = self.session.unsaved()
        return session_projects.UNSAVED_ID

    def is_stored(self, project_id: int) -> bool:
        """False for a session's project that reads see before it is stored (it has no
        tasks, completions or settings of its own yet)."""
        return project_id != session_projects.UNSAVED_ID or self.session is None

    def task(self, task_id: int) -> TaskRow:
        """A task the request may see (NOT_FOUND otherwise). Resolvers pass its
        ``project_id`` on to the services, which then act only within that project."""
        row = task_lookup.find_task(task_id, self.task_scope())
        self._check_visible(row.project_id, not_found("Task", task_id))
        return row

    def completion(self, completion_id: int, task_id: int | None = None) -> Completion:
        """A completion the request may see (of ``task_id`` when given), else NOT_FOUND."""
        row = completion_service.get_completion(completion_id, task_id)
        scope = self.task_scope()
        if scope is not None and row.project_id != scope:
            raise not_found("Completion", completion_id)
        self._check_visible(row.project_id, not_found("Completion", completion_id))
        return row

    def own_completion(self, completion_id: int, task_id: int | None = None) -> Completion:
        """A completion the caller may change: any for admins, else only one they made
        (FORBIDDEN otherwise; NOT_FOUND as :meth:`completion`)."""
        row = self.completion(completion_id, task_id)
        if not self.principal.owns(row.completed_by):
            raise DomainError("forbidden", "You may change only your own completions")
        return row

    def user(self, user_id: int) -> Any:
        """UserByIdLoader: a user row (None when gone), read once per request."""
        if user_id not in self._users:
            from server.services.auth.users import get_user

            self._users[user_id] = get_user(user_id)
        return self._users[user_id]

    def job(self, job_id: int) -> Job:
        row = ml_jobs.get_job(job_id)
        self._check_visible(row.project_id, not_found("Job", job_id))
        return row

    def _check_visible(self, project_id: int, error: DomainError) -> None:
        if self.session is None:
            return
        try:
            self.project(project_id)
        except DomainError as exc:
            if exc.code != "not_found":
                raise
            raise error from None

    def _load(self, project_id: int) -> Project:
        if project_id not in self._projects:
            self._projects[project_id] = project_service.get_project(project_id)
        return self._projects[project_id]

    def remember_project(self, project: Project) -> Project:
        """Cache a project row a mutation returned (its settings or config changed)."""
        self._projects[project.id] = project
        self._storages.pop(project.id, None)
        self._resolvers.pop(project.id, None)
        return project

    def label_config(self, project_id: int) -> LabelConfig:
        """The parsed config of a project (parsing is cached per config text)."""
        return project_service.parsed_config(self.project(project_id))

    def ml_runtime(self) -> MLRuntime:
        if self.ml is None:
            raise DomainError("ml_backend", "ML backends are not available here")
        return self.ml

    def task_scope(self) -> int | None:
        """The project tasks addressed by id must belong to (REST: the current one; a
        session's project that is not stored yet has none, and is not stored for this)."""
        if not self.confined:
            return None
        if self.project_id is None and self.session is not None:
            return self._session_project_id(store=False)
        return self.resolve_project_id(None)

    def project_settings(self, project_id: int | None = None) -> Settings:
        """Settings whose directories (upload/, export/, import-tmp/) are the project's."""
        if not self.settings.multi_session:
            return self.settings
        return self.settings.for_project(self.project(project_id).name)

    def storages(self, project_id: int) -> dict[str, Storage]:
        """StoragesByProjectLoader: a project's storage rows by role, read once per request."""
        if project_id not in self._storages:
            self._storages[project_id] = storage_config.storage_rows(project_id)
        return self._storages[project_id]

    def data_resolver(self, project_id: int) -> DataResolver | None:
        """The presigner of a project's s3:// task data (None without an S3 storage)."""
        if project_id not in self._resolvers:
            project = self.project(project_id)
            resolver = None
            if presign.needs_resolver(project):
                clients = self.storage.clients if self.storage is not None else None
                rows = self.storages(project_id)
                resolver = presign.data_resolver(project, rows, self.settings, clients)
            self._resolvers[project_id] = resolver
        return self._resolvers[project_id]

    def completions_changed(
        self, project_id: int, task_ids: list[int] | None, *, has_target: bool | None = None
    ) -> None:
        """Note after a commit that completions changed (None: of any task) so the project's
        target storage, if any, is written in the background. ``has_target`` is whether the
        project has one, when the writer read it inside its transaction after the project's
        lock (a storage's save takes that lock exclusively, so a target saved later writes
        everything after this commit); otherwise it is read here, after the commit, so that
        another process's new target is seen (projects without one cost one lookup)."""
        if self.storage is None:
            return
        if has_target is None:
            has_target = storage_config.has_target(project_id)
        if has_target:
            self.storage.write_completions(project_id, task_ids)


class SessionWrites(SchemaExtension):
    """Marks the context of a mutation (``Context.writes``): a read never stores the
    session's project, so cookieless requests create nothing."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            try:
                operation = self.execution_context.operation_type
            except RuntimeError:  # no such operation: execution reports it
                operation = OperationType.QUERY
            context.writes = operation is OperationType.MUTATION
        yield


def request_context(request: Any, response: Any = None, *, confined: bool = False) -> Context:
    """The context of an HTTP request (GraphQL or a REST route)."""
    state = request.app.state
    return Context(
        settings=state_value(state, "settings"),
        project_id=state_value(state, "project_id"),
        request=request,
        response=response,
        ml=state_value(state, "ml"),
        storage=state_value(state, "storage"),
        session=session_project(request),
        confined=confined,
        principal=request.scope.get(SCOPE_KEY, OPEN),
    )


Info = strawberry.Info[Context, None]
