"""Task import from uploaded files and URLs (rest-api.md §6).

Files are staged first (:mod:`server.services.imports.staging_dir`), read by
:mod:`server.services.imports.readers` and stored by the pipeline. Uploaded files are moved
into ``upload/`` only by a successful import (and removed again should the commit fail). An
empty labeling config may be generated from what was uploaded (§6.2 step 5).
"""

from __future__ import annotations

import filecmp
import logging
import mimetypes
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peewee import chunked

from server.db import released
from server.errors import DomainError
from server.gc_pause import paused_gc
from server.models import Project, Upload, now_seconds
from server.services import projects
from server.services.config.model import UNDEFINED_KEY, LabelConfig
from server.services.files.store import UPLOAD, FileStore
from server.services.imports.data_keys import DataKeys
from server.services.imports.pipeline import dry_result, finish, store, transaction
from server.services.imports.readers import (
    OBJECT_BY_FORMAT,
    TASK_LIST_FORMATS,
    ReadPosition,
    file_items,
)
from server.services.imports.report import ImportResult, Progress, Selection
from server.services.imports.staging_dir import (
    COPY_CHUNK,
    FileError,
    ImportLimits,
    IncomingFile,
    StagedFile,
    Staging,
    UnsafePath,
    make_directories,
    new_staging,
    url_file_name,
)
from server.services.imports.unpacking import stage_file
from server.services.projects import get_project, lock_project_for_import, parsed_config
from server.services.url_fetch import FetchPolicy, fetch

log = logging.getLogger(__name__)
UPLOAD_ROWS_PER_INSERT = 500


def stage_files(files: Sequence[IncomingFile], staging_root: Path, limits: ImportLimits) -> Staging:
    """Copy a request's files into a new staging directory (archives unpacked)."""
    if len(files) > limits.max_files:
        message = (
            f"Too many files: {len(files)} in one request, at most {limits.max_files} "
            "(LABELGRAPH_MAX_UPLOAD_FILES)"
        )
        raise DomainError("invalid", message, {"errors": [message]})
    staging = new_staging(staging_root)
    try:
        for incoming in files:
            stage_file(staging, incoming.name, incoming.stream, limits)
    except BaseException:
        staging.remove()
        raise
    return staging


def stage_url(url: str, staging_root: Path, limits: ImportLimits, policy: FetchPolicy) -> Staging:
    """Download ``url`` into a new staging directory, named after the URL (§6.1)."""
    if not isinstance(url, str) or not url.strip():
        message = "No URL to import: send it in the form field url"
        raise DomainError("invalid", message, {"errors": [message]})
    staging = new_staging(staging_root)
    try:
        download = staging.directory / "download"
        with download.open("w+b") as out:
            with released():  # no pooled connection held while the download runs
                fetched = fetch(url, out, policy)
            log.info("URL import fetched %s (%d bytes)", fetched.url, fetched.size)
            out.seek(0)
            stage_file(staging, url_file_name(url), out, limits)
        download.unlink()
    except BaseException:
        staging.remove()
        raise
    return staging


@dataclass
class FilePlan:
    files: list[StagedFile]  # the files to read, in order
    found: dict[str, int]
    selected: list[str]
    objects: list[str | None]
    show_list: bool

    def report(self, result: ImportResult, selection: Selection) -> ImportResult:
        result.formats = self.found
        result.selected_formats = self.selected
        result.selected_objects = self.objects
        result.files_as_tasks_list = selection.files_as_tasks_list
        result.show_files_as_tasks_list = self.show_list
        return result


def plan_files(staging: Staging, selection: Selection) -> FilePlan:
    readable = [f for f in staging.files if f.parse]
    found = dict(Counter(f.format for f in readable))
    chosen = list(selection.formats) if selection.formats is not None else sorted(found)
    files = [f for f in readable if not chosen or f.format in chosen]
    as_list = selection.files_as_tasks_list
    objects = [
        None if as_list and fmt in TASK_LIST_FORMATS else OBJECT_BY_FORMAT.get(fmt)
        for fmt in chosen
    ]
    show = any(fmt in TASK_LIST_FORMATS for fmt in chosen)
    return FilePlan(files, found, chosen, objects, show)


def _file_task_items(
    staging: Staging,
    plan: FilePlan,
    selection: Selection,
    config: LabelConfig,
    keys: DataKeys,
    position: ReadPosition,
    max_json_depth: int,
) -> Iterator[Any]:
    for staged in plan.files:
        first = True
        data_keys = len(config.data_types)
        as_list = selection.files_as_tasks_list
        for item in file_items(staging, staged, as_list, data_keys, position, max_json_depth):
            if first:
                keys.check(staged.name, item)
                first = False
            yield item


def generated_config(config: LabelConfig, plan: FilePlan, keys: DataKeys) -> str | None:
    """The config an empty one becomes after a file upload (§6.2 step 5), or None: one data
    key and one object type give ``<View><Image name="image" value="$image"/></View>``. Two
    object types are an error (Label Studio answered 500 after storing the tasks, Q-3)."""
    if not config.is_empty or keys.keys is None:
        return None
    data_keys = sorted(keys.keys)
    if len(data_keys) != 1:
        return None  # Label Studio writes <View></View>: nothing changes
    objects = set(plan.objects)
    if len(objects) > 1:
        message = (
            "More than one data type is presented: "
            + ", ".join(sorted(o or "task list (csv, tsv, txt)" for o in objects))
            + ". Set a labeling config first, or import one type of file at a time"
        )
        raise DomainError("invalid_tasks", message, {"errors": [message]})
    tag = next(iter(objects), None)
    if not tag:
        return None
    key = tag.lower() if data_keys[0] == UNDEFINED_KEY else data_keys[0]
    return f'<View><{tag} name="{tag.lower()}" value="${key}"/></View>'


def _auto_config(project: Project, text: str | None) -> None:
    if text is None:
        return
    try:
        projects.set_label_config(project.id, text)
    except DomainError as exc:
        log.info("no labeling config generated for %s: %s", project.name, exc.message)
        return
    log.info("labeling config generated from the upload: %s", text)


def _store_uploads(project_id: int, staging: Staging, upload_dir: Path) -> list[Path]:
    """Put the staged files into ``upload/``; record them. Returns the files it created
    (removed again by the caller should the transaction fail).

    An existing upload is never replaced: a name already holding the same bytes is kept as
    it is, one holding other bytes refuses the import. Folders of archive members are created
    without going through links (:func:`make_directories`)."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    created: list[Path] = []
    rows = []
    now = now_seconds()
    try:
        for staged in staging.files:
            parts = staged.name.split("/")
            try:
                target = make_directories(upload_dir, parts[:-1]) / parts[-1]
            except UnsafePath:
                raise FileError(staged.name, "unsafe file name") from None
            if _place_upload(staging.path(staged), target, staged.name):
                created.append(target)
            kind = mimetypes.guess_type(staged.name)[0]
            rows.append((project_id, staged.name, staged.name, staged.size, kind, now))
    except BaseException:
        _remove(created)
        raise
    columns = [
        Upload.project,
        Upload.name,
        Upload.original_name,
        Upload.size,
        Upload.content_type,
        Upload.created_at,
    ]
    # Chunks keep each statement under SQLite's (and PostgreSQL's) bound-variable limit.
    for batch in chunked(rows, UPLOAD_ROWS_PER_INSERT):
        Upload.insert_many(batch, fields=columns).on_conflict(
            conflict_target=[Upload.project, Upload.name],
            preserve=[Upload.size, Upload.content_type, Upload.created_at],
        ).execute()
    return created


def _place_upload(source: Path, target: Path, name: str) -> bool:
    """Link (or copy) ``source`` to ``target`` unless ``target`` exists; True if it was
    created. Creation is exclusive (``link``, ``open(..., "xb")``): an upload appearing at the
    same moment is not replaced either."""
    try:
        try:
            os.link(source, target)
        except FileExistsError:
            raise
        except OSError:  # no hard links here (another file system): copy
            _copy_exclusive(source, target)
    except FileExistsError:
        if target.is_symlink() or not target.is_file():
            raise FileError(name, "unsafe file name") from None
        if not filecmp.cmp(source, target, shallow=False):
            raise FileError(name, "another file of this name is already uploaded") from None
        return False
    return True


def _copy_exclusive(source: Path, target: Path) -> None:
    with source.open("rb") as src, target.open("xb") as out:
        try:
            shutil.copyfileobj(src, out, COPY_CHUNK)
        except BaseException:
            target.unlink(missing_ok=True)
            raise


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def read_staging(
    project_id: int,
    staging: Staging,
    selection: Selection,
    *,
    limits: ImportLimits,
    upload_dir: Path | None,
    progress: Progress | None = None,
    files: FileStore | None = None,
) -> ImportResult:
    """Import the files of ``staging`` (``upload_dir`` given) or, without ``upload_dir``, only
    validate them and report what an import would do (staged imports)."""
    started = time.perf_counter()
    insert = upload_dir is not None
    created: list[Path] = []
    position = ReadPosition(total=sum(f.size for f in staging.files if f.parse))

    def report(count: int) -> None:
        if progress is not None:
            progress(count, position.current, position.total)

    try:
        with paused_gc(), transaction(insert):
            project = lock_project_for_import(project_id) if insert else get_project(project_id)
            config = parsed_config(project)
            plan = plan_files(staging, selection)
            keys = DataKeys(project)
            depth = limits.max_json_depth
            items = _file_task_items(staging, plan, selection, config, keys, position, depth)
            stored = store(
                project, config, items, insert=insert, max_tasks=limits.max_tasks, progress=report
            )
            generated = generated_config(config, plan, keys)
            if insert:
                result = finish(project, stored)
                _auto_config(project, generated)
                assert upload_dir is not None
                created = _store_uploads(project.id, staging, upload_dir)
            else:
                result = dry_result(project, stored)
    except BaseException:
        _remove(created)
        raise
    if insert and files is not None and files.shared:
        share_uploads(files, project.name, staging, upload_dir)
    result.duration = round(time.perf_counter() - started, 6)
    return plan.report(result, selection)


def share_uploads(
    files: FileStore, project: str, staging: Staging, upload_dir: Path | None
) -> None:
    """Put the imported files into the shared file store (after the commit: no network call
    inside the transaction — a caller that wraps :func:`read_staging` in its own transaction
    passes ``files=None`` and calls this after its commit). A failure is logged: this process
    still serves its copy."""
    assert upload_dir is not None
    for staged in staging.files:
        try:
            files.put(project, UPLOAD, staged.name, upload_dir.joinpath(*staged.name.split("/")))
        except Exception:
            log.exception("cannot put upload %s into the file store", staged.name)
