"""Exports as background jobs: ``startExport`` queues one, any process's worker runs it with
progress, and the finished file is described in the job's ``result``.

The format is checked when the job is queued, so an unknown format fails the request itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from server.db import with_connection
from server.errors import DomainError
from server.services.export.exporter import ExportResult, check_format, export_project
from server.services.export.formats import available_formats
from server.services.files.store import EXPORT as EXPORT_AREA
from server.services.files.store import settings_file_store
from server.services.jobs import queue
from server.services.jobs.worker import Outcome, RunningJob
from server.services.projects import get_project, parsed_config
from server.settings import Settings

EXPORT = "export"
PROGRESS_EVERY = 0.5  # seconds between progress writes


class _Stopped(Exception):
    """The job was asked to stop (process stopping, lease lost)."""


def start_export(project_id: int, format_name: str | None, only_completed: bool) -> Any:
    """Check the format and queue the export job; returns its row."""
    project = get_project(project_id)
    name = check_format(format_name, available_formats(parsed_config(project)))
    total = project.labeled_task_count if only_completed else project.task_count
    params = {"format": name, "only_completed": only_completed}
    return queue.enqueue(project_id, EXPORT, params, total)


def result_json(result: ExportResult) -> dict[str, Any]:
    return {
        "format": result.format,
        "file_name": result.file_name,
        "download_name": result.download_name,
        "size": result.size,
        "task_count": result.task_count,
        "created_at": result.created_at,
        "expires_at": result.expires_at,
    }


def result_of(value: dict[str, Any], export_dir: Path) -> ExportResult:
    """The finished export a job's ``result`` describes."""
    return ExportResult(
        format=str(value["format"]),
        file_name=str(value["file_name"]),
        download_name=str(value["download_name"]),
        path=export_dir / str(value["file_name"]),
        size=int(value["size"]),
        task_count=int(value["task_count"]),
        created_at=int(value["created_at"]),
        expires_at=int(value["expires_at"]),
    )


def share_export(project_id: int, result: ExportResult, settings: Settings) -> None:
    """Put a finished export into the shared file store (when there is one), so every process
    serves ``/data/export/<name>``."""
    store = settings_file_store(settings)
    if store.shared:
        name = with_connection(lambda: get_project(project_id).name)
        store.put(name, EXPORT_AREA, result.file_name, result.path)


def run_export_job(job: RunningJob, settings: Settings) -> Outcome | None:
    """The worker's handler of ``export`` jobs (``settings``: the project's)."""
    reported = [0, 0.0]  # tasks counted so far, when

    def progress(done: int, total: int) -> None:
        if job.stopping.is_set():
            raise _Stopped
        now = time.monotonic()
        if now - reported[1] >= PROGRESS_EVERY or done >= total:
            job.progress(done=done - int(reported[0]), total=total)
            reported[0], reported[1] = done, now

    try:
        result = export_project(
            job.project_id,
            job.params.get("format"),
            settings,
            only_completed=bool(job.params.get("only_completed", True)),
            progress=progress,
        )
    except _Stopped:
        return None
    except DomainError as exc:
        return Outcome(queue.FAILED, exc.message)
    share_export(job.project_id, result, settings)
    return Outcome(queue.DONE, result=result_json(result))
