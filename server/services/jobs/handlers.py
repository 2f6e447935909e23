"""The kinds of background jobs and the periodic work, wired into one process's worker."""

from __future__ import annotations

import logging

from server.db import with_connection
from server.models import Project, StagedImport, now_seconds
from server.services.export.export_jobs import EXPORT, run_export_job
from server.services.export.exporter import sweep_exports
from server.services.files.expiry import sweep_shared_exports, sweep_shared_staging
from server.services.files.store import settings_file_store
from server.services.imports.staging import purge_expired
from server.services.jobs.worker import Handler, JobWorker, Outcome, RunningJob
from server.services.ml.client import MLClient
from server.services.ml.job_rows import PREDICTIONS
from server.settings import Settings

log = logging.getLogger(__name__)


def _project_settings(settings: Settings, project_id: int) -> Settings:
    if not settings.multi_session:
        return settings
    name = with_connection(lambda: Project.get_by_id(project_id).name)
    return settings.for_project(name)


def job_worker(settings: Settings, client: MLClient) -> JobWorker:
    """The worker of one process: prediction and export jobs, and expiry sweeps."""
    from server.services.ml.prediction_job import PredictionJob

    def predictions(job: RunningJob) -> Outcome | None:
        return PredictionJob(client, settings, job).run()

    def export(job: RunningJob) -> Outcome | None:
        return run_export_job(job, _project_settings(settings, job.project_id))

    def expire_staged_and_exported() -> None:
        sweep_expired(settings)

    handlers: dict[str, Handler] = {PREDICTIONS: predictions, EXPORT: export}
    return JobWorker(settings, handlers, periodic=[expire_staged_and_exported])


def sweep_expired(settings: Settings) -> None:
    """Drop expired staged imports (any process may: the delete is conditional) and this
    host's expired export files."""

    def projects_with_expired() -> list[int]:
        query = StagedImport.select(StagedImport.project).where(
            StagedImport.expires_at < now_seconds()
        )
        return sorted(set(query.distinct().scalars()))

    for project_id in with_connection(projects_with_expired):
        place = _project_settings(settings, project_id)
        removed = with_connection(purge_expired, project_id, place.import_tmp_dir)
        if removed:
            log.info("project %d: %d expired staged imports removed", project_id, removed)
    if not settings.multi_session:
        sweep_exports(settings.export_dir, settings.export_ttl)
    sweep_shared_files(settings)


def sweep_shared_files(settings: Settings) -> None:
    """Expire the shared file store's export and staged-import copies of every project."""
    if not settings_file_store(settings).shared:
        return

    def projects() -> list[tuple[int, str]]:
        return [(int(p.id), str(p.name)) for p in Project.select(Project.id, Project.name)]

    for project_id, name in with_connection(projects):
        place = _project_settings(settings, project_id)
        files, now = settings_file_store(place), float(now_seconds())
        exports = sweep_shared_exports(files, name, place.export_ttl, now)
        staged = with_connection(sweep_shared_staging, files, name, project_id, now)
        if exports or staged:
            log.info(
                "project %s: %d expired export and %d staged-import files removed from the "
                "shared store",
                name,
                exports,
                staged,
            )
