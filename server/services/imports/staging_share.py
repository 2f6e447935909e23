"""Staged imports on several hosts: with a shared file store, the files of a prepared import are
also put into it (area ``import``, under the staging directory's name), and a process that has
no copy of a staging directory fetches it before updating or applying the import."""

from __future__ import annotations

import logging
from pathlib import Path

from server.services.files.store import IMPORT, FileStore
from server.services.imports.staging_dir import StagedFile, Staging
from server.services.projects import get_project

log = logging.getLogger(__name__)
TASKS_FILE = "tasks.json"


def _names(staging: Staging) -> list[tuple[str, Path]]:
    """(store name, local path) of everything a staging directory holds."""
    pairs = [(f"{staging.directory.name}/files/{f.name}", staging.path(f)) for f in staging.files]
    if staging.tasks_path.is_file():
        pairs.append((f"{staging.directory.name}/{TASKS_FILE}", staging.tasks_path))
    return pairs


def share_staging(files: FileStore, project_id: int, staging: Staging) -> None:
    if not files.shared:
        return
    project = get_project(project_id).name
    for name, path in _names(staging):
        files.put(project, IMPORT, name, path)


def fetch_staging(
    files: FileStore, project_id: int, root: Path, directory: str, staged: list[StagedFile]
) -> None:
    """Bring a staging directory prepared by another process here (no-op when present)."""
    local = root / directory
    if not files.shared or local.is_dir():
        return
    project = get_project(project_id).name
    target = Staging(local, staged)
    files.fetch(project, IMPORT, f"{directory}/{TASKS_FILE}", target.tasks_path)
    for f in staged:
        files.fetch(project, IMPORT, f"{directory}/files/{f.name}", target.path(f))
    target.files_dir.mkdir(parents=True, exist_ok=True)


def drop_shared_staging(files: FileStore, project_id: int, directory: str) -> None:
    """Delete the store's copy of a staging directory whose import was applied. A failure is
    only logged: the import is committed, and the periodic sweep deletes the copy later."""
    if not files.shared:
        return
    project = get_project(project_id).name
    try:
        names = [name for name, _ in files.listing(project, IMPORT, f"{directory}/")]
        files.delete_many(project, IMPORT, names)
    except Exception as error:  # the store's client raises its own kinds of errors
        log.warning(
            "the shared copy of staged import %s stays until the sweep: %r", directory, error
        )
