"""``labelgraph init`` / ``start [--init]``: create the project, apply ``--label-config``,
``--input-path`` and ``--ml-backends``.

On an existing project the flags are not ignored (docs/compat.md, "Command line"):
``--label-config`` replaces the project's config when it differs, validated like a config saved
through the API (it must still fit the imported tasks and their completions, or the command
fails); ``--input-path`` imports its tasks only into a project that has none, so restarting with
the same flags never duplicates tasks (otherwise a warning says it was not imported and points
to ``labelgraph import``); ``--ml-backends`` is applied only to a new project (a warning
otherwise).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.cli_checks import database_step
from server.settings import Settings

log = logging.getLogger("labelgraph")


@dataclass(frozen=True)
class ProjectFlags:
    """What the command line asks of the project, read and checked before anything is made."""

    label_config_path: str | None = None
    label_config: str | None = None
    input_path: str | None = None
    tasks: Any = None
    ml_backends: Sequence[str] = ()

    @classmethod
    def read(
        cls,
        settings: Settings,
        label_config_path: str | None,
        input_path: str | None,
        ml_backends: Sequence[str] | None,
    ) -> ProjectFlags:
        """Read the files and check the ML backend URLs (OSError, ValueError, DomainError)."""
        from server.json_depth import check_json_depth
        from server.services.config import label_config as label_config_service
        from server.services.ml import backends as ml

        for spec in ml_backends or ():
            ml.check_url(ml.parse_backend_spec(spec, settings.project_name)[1])
        config_text = None
        if label_config_path is not None:
            config_text = Path(label_config_path).read_text(encoding="utf-8")
            label_config_service.parse(label_config_service.normalise(config_text))
        tasks = None
        if input_path is not None:
            raw = Path(input_path).read_bytes()
            check_json_depth(raw, settings.max_json_depth)  # json.loads would recurse
            tasks = json.loads(raw.decode("utf-8"))
        return cls(label_config_path, config_text, input_path, tasks, tuple(ml_backends or ()))


def initialise(
    settings: Settings,
    label_config: str | None,
    input_path: str | None,
    ml_backends: Sequence[str] | None = None,
) -> bool:
    """Create the project if needed and apply the flags to it; True if it was created."""
    from server.app import prepare_database

    flags = ProjectFlags.read(settings, label_config, input_path, ml_backends)
    project_id, created = database_step(
        f"cannot open the project {settings.project_dir}", lambda: prepare_database(settings)
    )
    apply_flags(settings, project_id, created, flags)
    return created


def apply_flags(settings: Settings, project_id: int, created: bool, flags: ProjectFlags) -> None:
    from server import db

    if flags.label_config is not None:
        db.with_connection(_apply_label_config, project_id, flags)
    if flags.tasks is not None:
        db.with_connection(_apply_input_path, settings, project_id, flags)
    if flags.ml_backends and created:
        db.with_connection(_add_backends, project_id, flags.ml_backends)
    elif flags.ml_backends:
        log.warning(
            "project %s already exists: --ml-backends not applied (connect backends with "
            "PATCH /api/project or GraphQL addMlBackend)",
            settings.project_dir,
        )


def _apply_label_config(project_id: int, flags: ProjectFlags) -> None:
    from server.services import projects
    from server.services.config import label_config as label_config_service

    assert flags.label_config is not None
    project = projects.get_project(project_id)
    if label_config_service.normalise(flags.label_config) == project.label_config:
        log.info("labeling config from %s unchanged", flags.label_config_path)
        return
    projects.set_label_config(project_id, flags.label_config)
    log.info("labeling config set from %s", flags.label_config_path)


def _apply_input_path(settings: Settings, project_id: int, flags: ProjectFlags) -> None:
    from server.services import projects
    from server.services.imports import json_import as imports

    project = projects.get_project(project_id)
    if project.task_count:
        log.warning(
            "project %s already has %d tasks: --input-path %s not imported (add tasks with "
            "`labelgraph import %s %s`)",
            settings.project_dir,
            project.task_count,
            flags.input_path,
            settings.project_dir,
            flags.input_path,
        )
        return
    result = imports.import_tasks(project_id, flags.tasks, max_tasks=settings.max_import_tasks)
    log.info("imported %d tasks from %s", len(result.task_ids), flags.input_path)


def _add_backends(project_id: int, specs: Sequence[str]) -> None:
    from server.services.ml import backends as ml

    for spec in specs:
        backend = ml.add_backend(None, project_id, spec, check_connection=False, trusted=True)
        log.info("ML backend %s added: %s", backend.name, backend.url)
