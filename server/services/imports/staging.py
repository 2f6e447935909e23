"""Staged imports: prepare, review and change, then apply (rest-api.md §6.6, the variant Label
Studio's own UI uses).

Label Studio kept one import slot per process (Q-24); here each staged import is a row of its
project in the database, so every worker sees it and two projects (or two clients) can stage
imports at the same time. Its files wait in a staging directory; applying imports them (all or
nothing) and removes the row and the directory, as does expiry (``import_staging_ttl``).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.db import is_sqlite, write_transaction
from server.errors import DomainError, not_found
from server.models import StagedImport, now_seconds
from server.services.files.store import FileStore, ProjectDirectoryStore, settings_file_store
from server.services.imports import file_import, json_import
from server.services.imports.report import ImportResult, Progress, Selection
from server.services.imports.staging_dir import ImportLimits, IncomingFile, StagedFile, Staging
from server.services.imports.staging_dir import open_staging as _open_staging
from server.services.imports.staging_share import (
    drop_shared_staging,
    fetch_staging,
    share_staging,
)
from server.services.projects import get_project
from server.services.url_fetch import FetchPolicy
from server.settings import Settings

log = logging.getLogger(__name__)

STRAY_AGE = 24 * 3600  # a staging directory without a row is removed after this long
UNSET: Any = object()


@dataclass(frozen=True)
class ImportSource:
    """What to import: a JSON body's tasks, uploaded files or a URL (exactly one)."""

    tasks: Any = None
    files: Sequence[IncomingFile] | None = None
    url: str | None = None

    @property
    def kind(self) -> str:
        given = [
            name
            for name, value in (("tasks", self.tasks), ("files", self.files), ("url", self.url))
            if value is not None
        ]
        if len(given) != 1:
            message = "Give exactly one of tasks, files or url to import"
            raise DomainError("invalid", message, {"errors": [message]})
        return given[0]


@dataclass(frozen=True)
class StagingPlace:
    """Where staged files wait and where imported ones go, and the limits that apply."""

    staging_root: Path
    upload_dir: Path
    limits: ImportLimits = ImportLimits()  # noqa: RUF009  (frozen)
    policy: FetchPolicy = FetchPolicy()  # noqa: RUF009  (frozen)
    ttl: int = 3600
    files: FileStore = ProjectDirectoryStore()  # noqa: RUF009  (frozen; where uploads go too)


def staging_place(settings: Settings) -> StagingPlace:
    """Where this server stages and stores uploads, with its configured limits."""
    return StagingPlace(
        staging_root=settings.import_tmp_dir,
        upload_dir=settings.upload_dir,
        limits=ImportLimits(
            max_files=settings.max_upload_files,
            max_tasks=settings.max_import_tasks,
            max_archive_members=settings.max_archive_members,
            max_archive_size=settings.max_archive_size,
            max_unpacked_size=settings.max_import_unpacked_size,
            max_json_depth=settings.max_json_depth,
        ),
        policy=FetchPolicy(
            timeout=settings.url_import_timeout,
            max_size=settings.url_import_max_size,
            allow_private=settings.url_import_allow_private,
        ),
        ttl=settings.import_staging_ttl,
        files=settings_file_store(settings),
    )


def stage(source: ImportSource, place: StagingPlace) -> Staging:
    kind = source.kind
    if kind == "tasks":
        return json_import.stage_tasks(source.tasks, place.staging_root)
    if kind == "files":
        assert source.files is not None
        return file_import.stage_files(source.files, place.staging_root, place.limits)
    assert source.url is not None
    return file_import.stage_url(source.url, place.staging_root, place.limits, place.policy)


def import_now(
    project_id: int,
    source: ImportSource,
    place: StagingPlace,
    selection: Selection = Selection(),  # noqa: B008  (frozen)
    progress: Progress | None = None,
) -> ImportResult:
    """A direct import (``POST /api/project/import``) of any source."""
    if source.kind == "tasks":
        limits = place.limits
        return json_import.import_tasks(
            project_id,
            source.tasks,
            max_tasks=limits.max_tasks,
            max_json_depth=limits.max_json_depth,
        )
    started = time.perf_counter()
    staging = stage(source, place)
    try:
        result = file_import.read_staging(
            project_id,
            staging,
            selection,
            limits=place.limits,
            upload_dir=place.upload_dir,
            files=place.files,
            progress=progress,
        )
    finally:
        staging.remove()
    result.duration = round(time.perf_counter() - started, 6)
    return result


# --------------------------------------------------------------------------- staged


@dataclass
class StagedState:
    kind: str  # "files" (uploads and URLs) or "tasks" (a JSON body)
    files: list[StagedFile]
    formats: list[str] | None = None
    files_as_tasks_list: bool = True

    @property
    def selection(self) -> Selection:
        formats = tuple(self.formats) if self.formats is not None else None
        return Selection(formats, self.files_as_tasks_list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "files": [f.to_json() for f in self.files],
            "formats": self.formats,
            "files_as_tasks_list": self.files_as_tasks_list,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> StagedState:
        return cls(
            kind=value["kind"],
            files=[StagedFile.from_json(f) for f in value["files"]],
            formats=value.get("formats"),
            files_as_tasks_list=bool(value.get("files_as_tasks_list", True)),
        )


@dataclass
class Staged:
    """A staged import as the API shows it."""

    id: int
    expires_at: int
    report: ImportResult


def _staged(row: StagedImport) -> Staged:
    return Staged(row.id, row.expires_at, ImportResult.from_json(row.report))


def _check(
    project_id: int, staging: Staging, state: StagedState, limits: ImportLimits
) -> ImportResult:
    """What applying would import (validates everything, stores nothing)."""
    if state.kind == "tasks":
        return json_import.read_staged_tasks(project_id, staging, limits=limits, insert=False)
    return file_import.read_staging(
        project_id, staging, state.selection, limits=limits, upload_dir=None
    )


def prepare(project_id: int, source: ImportSource, place: StagingPlace) -> Staged:
    """Stage an import and check it; nothing is imported yet."""
    purge_expired(project_id, place.staging_root)
    staging = stage(source, place)
    try:
        state = StagedState("tasks" if source.kind == "tasks" else "files", staging.files)
        report = _check(project_id, staging, state, place.limits)
        with write_transaction():
            row = StagedImport.create(
                project=project_id,
                directory=staging.directory.name,
                state=state.to_json(),
                report=report.to_json(),
                expires_at=now_seconds() + place.ttl,
            )
        share_staging(place.files, project_id, staging)
    except BaseException:
        staging.remove()
        raise
    return _staged(row)


def _row(project_id: int, import_id: int, lock: bool = False) -> StagedImport:
    query = StagedImport.select().where(
        StagedImport.id == import_id,
        StagedImport.project == project_id,
        StagedImport.expires_at >= now_seconds(),
    )
    if lock and not is_sqlite():
        query = query.for_update()
    row: StagedImport | None = query.first()
    if row is None:
        raise not_found("Import", import_id)
    return row


def get(project_id: int, import_id: int) -> Staged:
    return _staged(_row(project_id, import_id))


def update(
    project_id: int,
    import_id: int,
    place: StagingPlace,
    *,
    formats: Any = UNSET,
    files_as_tasks_list: bool | None = None,
) -> Staged:
    """Change what a staged import reads (formats, csv/tsv/txt as task lists or as single
    assets) and check it again; a change that does not check out leaves it as it was."""
    row = _row(project_id, import_id)
    state = StagedState.from_json(row.state)
    if formats is not UNSET:
        if formats is not None and not (
            isinstance(formats, list | tuple) and all(isinstance(f, str) for f in formats)
        ):
            raise DomainError("invalid", "selected_formats must be a list of strings")
        state.formats = None if formats is None else [str(f) for f in formats]
    if files_as_tasks_list is not None:
        state.files_as_tasks_list = files_as_tasks_list
    fetch_staging(place.files, project_id, place.staging_root, row.directory, state.files)
    staging = _open_staging(place.staging_root, row.directory, state.files)
    report = _check(project_id, staging, state, place.limits)
    with write_transaction():
        row = _row(project_id, import_id, lock=True)
        StagedImport.update(
            state=state.to_json(),
            report=report.to_json(),
            expires_at=now_seconds() + place.ttl,
        ).where(StagedImport.id == row.id).execute()
        row.report = report.to_json()
        row.expires_at = now_seconds() + place.ttl
    return _staged(row)


def apply(
    project_id: int, import_id: int, place: StagingPlace, progress: Progress | None = None
) -> ImportResult:
    """Import a staged import (all or nothing); the staged import is gone afterwards."""
    started = time.perf_counter()
    unlocked = _row(project_id, import_id)  # fetched before the transaction: no network in it
    files = StagedState.from_json(unlocked.state).files
    fetch_staging(place.files, project_id, place.staging_root, unlocked.directory, files)
    with write_transaction():
        row = _row(project_id, import_id, lock=True)
        state = StagedState.from_json(row.state)
        staging = _open_staging(place.staging_root, row.directory, state.files)
        if state.kind == "tasks":
            result = json_import.read_staged_tasks(
                project_id, staging, limits=place.limits, insert=True
            )
        else:
            result = file_import.read_staging(
                project_id,
                staging,
                state.selection,
                limits=place.limits,
                upload_dir=place.upload_dir,
                files=None,  # shared below, after this transaction's commit
                progress=progress,
            )
        StagedImport.delete().where(StagedImport.id == row.id).execute()
    if state.kind != "tasks" and place.files.shared:
        project = get_project(project_id).name
        file_import.share_uploads(place.files, project, staging, place.upload_dir)
    staging.remove()
    drop_shared_staging(place.files, project_id, row.directory)
    result.duration = round(time.perf_counter() - started, 6)
    return result


def purge_expired(project_id: int, staging_root: Path, now: int | None = None) -> int:
    """Drop the project's expired staged imports and their files, and staging directories
    nothing refers to any more (left by a crash); returns how many imports expired."""
    now = now_seconds() if now is None else now
    with write_transaction():
        expired = list(
            StagedImport.select(StagedImport.id, StagedImport.directory).where(
                StagedImport.project == project_id, StagedImport.expires_at < now
            )
        )
        if expired:
            ids = [row.id for row in expired]
            StagedImport.delete().where(StagedImport.id.in_(ids)).execute()
    for row in expired:
        shutil.rmtree(staging_root / row.directory, ignore_errors=True)
    if staging_root.is_dir():
        old = [
            child
            for child in staging_root.iterdir()
            if child.is_dir() and child.stat().st_mtime < now - STRAY_AGE
        ]
        if old:
            live = {row.directory for row in StagedImport.select(StagedImport.directory)}
            for child in old:
                if child.name not in live:
                    log.info("removing stray import staging directory %s", child.name)
                    shutil.rmtree(child, ignore_errors=True)
    return len(expired)
