"""Task imports: JSON tasks, uploaded files (GraphQL multipart request spec), URLs; staged
imports; the import report."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry
from graphql import VariableNode
from strawberry.file_uploads import Upload

from schema.context import Info
from schema.permissions import IsAdmin, inherits_access
from schema.scalars import JSON, from_seconds
from server.errors import DomainError
from server.json_depth import check_value_depth
from server.principal import Role
from server.services.imports import staging as import_staging
from server.services.imports.report import ImportResult, Selection
from server.services.imports.staging import ImportSource, Staged, staging_place
from server.services.imports.staging_dir import IncomingFile

MAX_FORMATS = 100


def _incoming(files: list[Upload] | None) -> list[IncomingFile] | None:
    """Uploads (Starlette ``UploadFile``s from a multipart request) as the services take them."""
    if files is None:
        return None
    incoming = []
    for upload in files:
        upload_any: Any = upload
        incoming.append(IncomingFile(upload_any.filename or "file", upload_any.file))
    return incoming


def _source(tasks: Any, files: list[Upload] | None, url: str | None) -> ImportSource:
    return ImportSource(tasks=tasks, files=_incoming(files), url=url)


def _check_inline_tasks(info: Info, tasks: Any, max_depth: int) -> None:
    """Refuse ``tasks`` written inline in the document (a literal, not a ``$variable``) nested
    deeper than ``max_depth`` (``INVALID``). Variables were checked as bytes with the request
    body; literals never were (graphql-core itself only stops at ~250 levels)."""
    if tasks is None:
        return
    arguments = info._raw_info.field_nodes[0].arguments or ()
    node = next((a.value for a in arguments if a.name.value == "tasks"), None)
    if node is not None and not isinstance(node, VariableNode):
        check_value_depth(tasks, max_depth)


@inherits_access(Role.ADMIN)
@strawberry.type(description="What an import stored (or, for a staged import, would store).")
class ImportReport:
    result: strawberry.Private[ImportResult]
    staged_id: strawberry.Private[int | None] = None

    @strawberry.field
    def project_name(self) -> str:
        return self.result.project_name

    @strawberry.field
    def task_count(self) -> int:
        return self.result.total_tasks

    @strawberry.field
    def completion_count(self) -> int:
        return self.result.completion_count

    @strawberry.field
    def prediction_count(self) -> int:
        return self.result.prediction_count

    @strawberry.field(description="Seconds the import took.")
    def duration(self) -> float:
        return self.result.duration

    @strawberry.field(description="Ids of the new tasks, in import order (empty until applied).")
    def new_task_ids(self) -> list[int]:
        return self.result.task_ids

    @strawberry.field(
        description="The first tasks as data objects, with completions and predictions."
    )
    def task_preview(self) -> JSON:
        return self.result.preview

    @strawberry.field(description="Uploaded file extensions and how many files had each.")
    def found_formats(self) -> JSON:
        return self.result.formats

    @strawberry.field(description="The extensions read (null for JSON tasks).")
    def selected_formats(self) -> list[str] | None:
        return self.result.selected_formats

    @strawberry.field(
        description="The object tag each selected extension suggests (Image, Audio, "
        "HyperText, Text, TimeSeries), null where none or where read as a task list."
    )
    def selected_objects(self) -> list[str | None] | None:
        return self.result.selected_objects

    @strawberry.field(description="Whether csv/tsv/txt files are read as task lists.")
    def files_as_tasks_list(self) -> bool:
        return self.result.files_as_tasks_list

    @strawberry.field(description="Whether csv/tsv/txt files were found (null for JSON tasks).")
    def show_files_as_tasks_list(self) -> bool | None:
        return self.result.show_files_as_tasks_list

    @strawberry.field(description="The report in Label Studio 0.9's import answer form.")
    def ls_json(self) -> JSON:
        return self.result.ls_json(staged_id=self.staged_id)


@inherits_access(Role.ADMIN)
@strawberry.type(description="An import prepared but not applied yet; expires unless applied.")
class StagedImport:
    staged: strawberry.Private[Staged]

    @strawberry.field
    def id(self) -> int:
        return self.staged.id

    @strawberry.field(description="When it expires (each change extends it).")
    def expires_at(self) -> dt.datetime:
        moment = from_seconds(self.staged.expires_at)
        assert moment is not None
        return moment

    @strawberry.field(description="What applying it would import.")
    def report(self) -> ImportReport:
        return ImportReport(result=self.staged.report, staged_id=self.staged.id)


@strawberry.type
class ImportQuery:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description="A staged import of the project (NOT_FOUND once applied).",
    )
    def staged_import(self, info: Info, id: int, project_id: int | None = None) -> StagedImport:
        pid = info.context.resolve_project_id(project_id)
        return StagedImport(staged=import_staging.get(pid, id))


_SOURCES = (
    "Give exactly one source: `tasks` (a list of task objects, wrapped `{data, completions, "
    "predictions, meta}` or bare data objects, or one object), `files` (uploads through the "
    "GraphQL multipart request spec; send the header `apollo-require-preflight: true`) or `url` "
    "(downloaded by the server). "
)


@strawberry.type
class ImportMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Import tasks. "
        + _SOURCES
        + "Files are read by extension as Label Studio does (json, csv, tsv, txt, html/htm/xml, "
        "zip archives, media files hosted under /data/upload/). All or nothing: invalid tasks "
        "or files fail with extensions.code INVALID_TASKS and Label Studio's messages in "
        "extensions.errors; limits with TOO_LARGE; a refused or failed download with "
        "FETCH_FAILED.",
    )
    def import_tasks(
        self,
        info: Info,
        tasks: JSON | None = None,
        files: list[Upload] | None = None,
        url: str | None = None,
        files_as_tasks_list: bool = True,
        project_id: int | None = None,
    ) -> ImportReport:
        pid = info.context.resolve_project_id(project_id)
        place = staging_place(info.context.project_settings(pid))
        _check_inline_tasks(info, tasks, place.limits.max_json_depth)
        selection = Selection(files_as_tasks_list=files_as_tasks_list)
        result = import_staging.import_now(pid, _source(tasks, files, url), place, selection)
        if result.completion_count:
            info.context.completions_changed(pid, result.task_ids)
        return ImportReport(result=result)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Stage an import to review it before applying it (Label Studio's UI "
        "flow). " + _SOURCES + "Validates everything; stores no task.",
    )
    def prepare_import(
        self,
        info: Info,
        tasks: JSON | None = None,
        files: list[Upload] | None = None,
        url: str | None = None,
        project_id: int | None = None,
    ) -> StagedImport:
        pid = info.context.resolve_project_id(project_id)
        place = staging_place(info.context.project_settings(pid))
        _check_inline_tasks(info, tasks, place.limits.max_json_depth)
        return StagedImport(staged=import_staging.prepare(pid, _source(tasks, files, url), place))

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Change what a staged import reads: `selectedFormats` (extensions with "
        "their dot; empty or null: all) and `filesAsTasksList` (false: csv/tsv/txt files "
        "become single hosted assets). Checked again; on error nothing changes.",
    )
    def update_staged_import(
        self,
        info: Info,
        id: int,
        selected_formats: list[str] | None = strawberry.UNSET,
        files_as_tasks_list: bool | None = None,
        project_id: int | None = None,
    ) -> StagedImport:
        pid = info.context.resolve_project_id(project_id)
        place = staging_place(info.context.project_settings(pid))
        formats: Any = import_staging.UNSET
        if selected_formats is not strawberry.UNSET:
            formats = selected_formats
            if formats is not None and len(formats) > MAX_FORMATS:
                message = f"selectedFormats takes at most {MAX_FORMATS} extensions"
                raise DomainError("invalid", message, {"field": "selectedFormats"})
        staged = import_staging.update(
            pid, id, place, formats=formats, files_as_tasks_list=files_as_tasks_list
        )
        return StagedImport(staged=staged)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Import a staged import (all or nothing); it is then gone.",
    )
    def apply_staged_import(
        self, info: Info, id: int, project_id: int | None = None
    ) -> ImportReport:
        pid = info.context.resolve_project_id(project_id)
        place = staging_place(info.context.project_settings(pid))
        result = import_staging.apply(pid, id, place)
        if result.completion_count:
            info.context.completions_changed(pid, result.task_ids)
        return ImportReport(result=result)
