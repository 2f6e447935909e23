"""The process's ML runtime: the backend HTTP client and the runner that starts prediction
jobs on background threads and waits for them at shutdown."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from server.db import with_connection
from server.services.ml.client import MLClient
from server.services.ml.job_rows import set_state
from server.services.ml.prediction_job import PredictionJob
from server.settings import Settings

log = logging.getLogger(__name__)


class JobRunner:
    """Runs jobs on threads of their own; ``close`` asks them to stop and waits a while."""

    def __init__(self, client: MLClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._stopping = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def launch(self, job_id: int) -> None:
        thread = threading.Thread(
            target=self._run, args=(job_id,), name=f"labelgraph-job-{job_id}", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, job_id: int) -> None:
        try:
            PredictionJob(self.client, self.settings, job_id, self._stopping).run()
        except Exception:
            log.exception("prediction job %d failed", job_id)
            try:
                with_connection(set_state, job_id, "failed", "Unexpected error; see the log")
            except Exception:
                log.exception("cannot mark job %d as failed", job_id)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def close(self, timeout: float) -> None:
        self._stopping.set()
        with self._lock:
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


@dataclass
class MLRuntime:
    """The process-wide ML machinery: the HTTP client and the job runner (lifespan state)."""

    client: MLClient
    jobs: JobRunner

    @classmethod
    def open(cls, settings: Settings) -> MLRuntime:
        client = MLClient(settings)
        return cls(client=client, jobs=JobRunner(client, settings))

    def close(self) -> None:
        settings = self.client.settings
        self.jobs.close(settings.ml_connect_timeout + settings.ml_predict_timeout + 1)
        self.client.close()
