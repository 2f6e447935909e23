"""Project types, queries and mutations (settings, labeling config, label stream)."""

from __future__ import annotations

import datetime as dt

import strawberry

from schema.context import Info
from schema.datamanager import TaskFilter, TaskSort, TaskViewType, filtered, view_number
from schema.label_config import (
    BrokenCompletion,
    ConfigChangeImpact,
    ConfigError,
    ParsedLabelConfig,
    SampleTaskFile,
)
from schema.ml import MLBackend
from schema.permissions import IsAdmin, IsAnnotator, inherits_access
from schema.scalars import JSON, from_seconds
from schema.storage import Storage, storage_view
from schema.tasks import Task, TaskConnection, TaskOrder, TaskPage, task_connection, task_page
from server.errors import DomainError
from server.models import Project as ProjectRow
from server.principal import Role
from server.services import projects as project_service
from server.services import session_projects
from server.services.datamanager import columns as dm_columns
from server.services.datamanager import views as view_service
from server.services.datamanager.listing import TaskSelection
from server.services.ml import backends as ml_service
from server.services.storage import storage_types
from server.services.storage.config import settings_document
from server.services.tasks import completions as completion_service
from server.services.tasks import next_task as next_task_service
from server.settings import SAMPLING_MODES

NEW_NEEDS_MULTI_SESSION = (
    '"multi_session_force_recreate" option supported only with "start-multi-session" mode'
)


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="A labeling project: config, settings, counters and tasks.")
class Project:
    row: strawberry.Private[ProjectRow]

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def uuid(self) -> str:
        return self.row.uuid

    @strawberry.field(description="The project's name (its directory name in `start` mode).")
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def title(self) -> str:
        return self.row.title

    @strawberry.field
    def description(self) -> str:
        return self.row.description

    @strawberry.field(description="Labeling instructions (HTML).")
    def instruction(self) -> str:
        return self.row.instruction

    @strawberry.field(description="The labeling config XML.")
    def label_config(self) -> str:
        return self.row.label_config

    @strawberry.field(description="The config without comments and newlines.")
    def label_config_line(self, info: Info) -> str:
        return project_service.parsed_config(self.row).line

    @strawberry.field
    def label_config_updated(self) -> bool:
        return self.row.label_config_updated

    @strawberry.field(description="Data keys the config reads, with the tag that shows each.")
    def data_types(self, info: Info) -> JSON:
        return dict(project_service.parsed_config(self.row).data_types)

    @strawberry.field
    def config_has_control_tags(self, info: Info) -> bool:
        return project_service.parsed_config(self.row).has_control_tags

    @strawberry.field(description="Version of the labeling config, +1 on every save.")
    def label_config_version(self) -> int:
        return self.row.label_config_version

    @strawberry.field(description="What the server derives from the labeling config.")
    def parsed_label_config(self) -> ParsedLabelConfig:
        return ParsedLabelConfig(model=project_service.parsed_config(self.row))

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Dry run of `setLabelConfig`: would the config be accepted, and which "
        "existing completions could it no longer load (the first `first` of them).",
    )
    def label_config_impact(
        self, info: Info, label_config: str, first: int = 20
    ) -> ConfigChangeImpact:
        max_bytes = info.context.settings.max_label_config_size
        if not info.context.is_stored(self.row.id):  # no data yet: only the config is checked
            issues = project_service.label_config_issues(label_config, max_bytes)
            return ConfigChangeImpact(
                ok=not issues,
                errors=[ConfigError.of(i) for i in issues],
                broken_completion_count=0,
                broken_completions=[],
            )
        impact = project_service.label_config_impact(self.row.id, label_config, max_bytes, first)
        return ConfigChangeImpact(
            ok=not impact.issues,
            errors=[ConfigError.of(i) for i in impact.issues],
            broken_completion_count=impact.broken_completion_count,
            broken_completions=[BrokenCompletion.of(b) for b in impact.broken_completions],
        )

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Two sample tasks for the config as an import file: json, csv, tsv or txt.",
    )
    def sample_task_file(self, format: str = "json") -> SampleTaskFile:
        return SampleTaskFile.of(project_service.sample_file(self.row, format))

    @strawberry.field(description="One of: " + ", ".join(SAMPLING_MODES))
    def sampling(self) -> str:
        return self.row.sampling

    @strawberry.field
    def allow_delete_completions(self) -> bool:
        return self.row.allow_delete_completions

    @strawberry.field
    def show_instruction(self) -> bool:
        return self.row.show_instruction

    @strawberry.field
    def show_skip_button(self) -> bool:
        return self.row.show_skip_button

    @strawberry.field
    def enable_empty_completion(self) -> bool:
        return self.row.enable_empty_completion

    @strawberry.field
    def show_project_links_in_multisession(self) -> bool:
        return self.row.show_project_links_in_multisession

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return from_seconds(self.row.created_at)  # type: ignore[return-value]

    @strawberry.field
    def task_count(self) -> int:
        return self.row.task_count

    @strawberry.field(description="Tasks with at least one completion.")
    def labeled_task_count(self) -> int:
        return self.row.labeled_task_count

    @strawberry.field(description="All completions of all tasks.")
    def completion_count(self) -> int:
        return self.row.completion_count

    @strawberry.field
    def prediction_count(self) -> int:
        return self.row.prediction_count

    @strawberry.field(description="Keyset-paginated tasks: pass `pageInfo.endCursor` as `after`.")
    def tasks(
        self,
        info: Info,
        first: int = 10,
        after: str | None = None,
        order_by: TaskOrder = TaskOrder.ID_ASC,
        filter: TaskFilter | None = None,
        search: str | None = None,
        sort_by: TaskSort | None = None,
        view: strawberry.ID | None = None,
    ) -> TaskConnection:
        query, sort = filtered(self.row.id, filter, search, sort_by, view)
        return task_connection(info, self.row, first, after, order_by, query, sort)

    @strawberry.field(description="Page `page` (1-based) of `pageSize` tasks, as REST pages.")
    def task_page(
        self,
        info: Info,
        page: int = 1,
        page_size: int = 10,
        order_by: TaskOrder = TaskOrder.ID_ASC,
        filter: TaskFilter | None = None,
        search: str | None = None,
        sort_by: TaskSort | None = None,
        view: strawberry.ID | None = None,
    ) -> TaskPage:
        query, sort = filtered(self.row.id, filter, search, sort_by, view)
        return task_page(info, self.row, page, page_size, order_by, query, sort)

    @strawberry.field(
        description="Label Studio 0.9.1's data-manager columns: the data keys, the task "
        "fields and the data group."
    )
    def data_manager_columns(self) -> JSON:
        return dm_columns.columns(self.row)

    @strawberry.field(
        description="Completions of a view's tasks, a page at a time, as Label Studio's "
        "tab annotations: {annotations: [completion + task_id], total}."
    )
    def view_completions(
        self, view: strawberry.ID | None = None, page: int = 1, page_size: int = 10
    ) -> JSON:
        if page < 1 or page_size < 1:
            raise DomainError("invalid", "Incorrect page or page_size", {"field": "page"})
        query, _ = filtered(self.row.id, None, None, None, view)
        return dm_columns.completions_page(self.row, query or TaskSelection(), page, page_size)

    @strawberry.field(description="The project's saved views (data-manager tabs).")
    def views(self) -> list[TaskViewType]:
        return [TaskViewType(row=row) for row in view_service.list_views(self.row.id)]

    @strawberry.field(description="A saved view by id (NOT_FOUND when not of this project).")
    def view(self, id: strawberry.ID) -> TaskViewType:
        return TaskViewType(row=view_service.get_view(self.row.id, view_number(id)))

    @strawberry.field(
        description="The next task to label (null when none is left), by the project's "
        "sampling or the one given."
    )
    def next_task(self, info: Info, sampling: str | None = None) -> Task | None:
        row = next_task_service.next_task(self.row, sampling)
        return None if row is None else Task.many(info.context, [row])[0]

    @strawberry.field(description="Ids of the tasks that have completions, ascending.")
    def labeled_task_ids(self) -> list[int]:
        return completion_service.labeled_task_ids(self.row.id)

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Connected ML backends, in the order they were added.",
    )
    def ml_backends(self) -> list[MLBackend]:
        return [MLBackend(row=row) for row in ml_service.list_backends(self.row.id)]

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Where tasks come from: tasks-json (the database), s3, redis.",
    )
    def source_storage(self, info: Info) -> Storage:
        return Storage(view=storage_view(info, self.row.id, storage_types.SOURCE))

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Where completions are also written: completions-dir, s3-completions, "
        "redis-completions (default: only the database).",
    )
    def target_storage(self, info: Info) -> Storage:
        return Storage(view=storage_view(info, self.row.id, storage_types.TARGET))

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Label Studio's storage settings document (GET "
        "/api/project/storage-settings): every supported type's form per role, the current "
        "type's fields with their values (credentials masked).",
    )
    def storage_settings(self, info: Info) -> JSON:
        ctx = info.context
        project_dir = ctx.project_settings(self.row.id).project_dir
        return settings_document(ctx.storages(self.row.id), project_dir)


@strawberry.input(description="Project settings to change; omitted fields stay as they are.")
class ProjectSettingsInput:
    title: str | None = None
    description: str | None = None
    instruction: str | None = None
    sampling: str | None = None
    allow_delete_completions: bool | None = None
    show_instruction: bool | None = None
    show_skip_button: bool | None = None
    enable_empty_completion: bool | None = None
    show_project_links_in_multisession: bool | None = None


@strawberry.type
class ProjectQuery:
    @strawberry.field(
        permission_classes=[IsAnnotator],
        description="A project by id or uuid; without either, the server's current project. "
        "In multi-session mode only the session's own projects, its current one and those "
        "it selected by uuid (others are NOT_FOUND, as unknown ones).",
    )
    def project(self, info: Info, id: int | None = None, uuid: str | None = None) -> Project:
        if uuid is not None:
            return Project(row=info.context.project_by_uuid(uuid))
        return Project(row=info.context.project(id))

    @strawberry.field(
        permission_classes=[IsAnnotator],
        description="All projects; in multi-session mode the session's own projects and the "
        "ones shared with it.",
    )
    def projects(self, info: Info) -> list[Project]:
        return [Project(row=row) for row in info.context.visible_projects()]


@strawberry.type
class ProjectMutation:
    @strawberry.mutation(permission_classes=[IsAdmin], description="Change project settings.")
    def update_project(
        self, info: Info, input: ProjectSettingsInput, project_id: int | None = None
    ) -> Project:
        changes = {k: v for k, v in vars(input).items() if v is not None}
        row = project_service.update_project(info.context.resolve_project_id(project_id), changes)
        return Project(row=info.context.remember_project(row))

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Multi-session mode: create a project for the session's user and make it "
        "the session's current project (`POST /api/project?new=1&desc=…`).",
    )
    def create_project(self, info: Info, description: str = "") -> Project:
        session = info.context.session
        if session is None:
            raise DomainError("invalid", NEW_NEEDS_MULTI_SESSION, {"reason": "single_project"})
        sampling = info.context.settings.sampling
        row = session_projects.create_project(session.user, description, sampling)
        session.select(row)
        info.context.project_id = row.id
        return Project(row=info.context.remember_project(row))

    @strawberry.mutation(
        permission_classes=[IsAnnotator],
        description="Make the project with this uuid the session's current project "
        "(multi-session mode; another user's project becomes shared with the session). An "
        "unknown uuid is NOT_FOUND and changes nothing. In single-project mode only the "
        "current project can be selected.",
    )
    def select_project(self, info: Info, uuid: str) -> Project:
        ctx = info.context
        row = session_projects.find_project(uuid)
        if ctx.session is None:
            if row.id != ctx.resolve_project_id(None):
                message = "Switching projects needs start-multi-session mode"
                raise DomainError("invalid", message, {"reason": "single_project"})
        else:
            ctx.session.select(row)
            ctx.project_id = row.id
        return Project(row=ctx.remember_project(row))

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Validate and save the labeling config. Invalid configs, and configs the "
        "project's tasks or completions could not be loaded with, fail with extensions.code "
        "INVALID_LABEL_CONFIG, Label Studio's message in extensions.errors and the structured "
        "error (message, code, tag, attribute, line) in extensions.configErrors.",
    )
    def set_label_config(
        self, info: Info, label_config: str, project_id: int | None = None
    ) -> Project:
        pid = info.context.resolve_project_id(project_id)
        max_bytes = info.context.settings.max_label_config_size
        row = project_service.set_label_config(pid, label_config, max_bytes)
        return Project(row=info.context.remember_project(row))
