"""The process's ML runtime: the backend HTTP client and the process's job worker, which runs
prediction jobs (and the other background jobs, :mod:`server.services.jobs.handlers`)."""

from __future__ import annotations

from dataclasses import dataclass

from server.services.jobs.handlers import job_worker
from server.services.jobs.worker import JobWorker
from server.services.ml.client import MLClient
from server.settings import Settings


@dataclass
class MLRuntime:
    """The ML client and the job worker (lifespan state)."""

    client: MLClient
    jobs: JobWorker

    @classmethod
    def open(cls, settings: Settings, *, start: bool = True) -> MLRuntime:
        client = MLClient(settings)
        jobs = job_worker(settings, client)
        if start:
            jobs.start()
        return cls(client=client, jobs=jobs)

    def close(self) -> None:
        settings = self.client.settings
        self.jobs.close(settings.ml_connect_timeout + settings.ml_predict_timeout + 1)
        self.client.close()
