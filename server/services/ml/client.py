"""The HTTP client that talks to ML backends (ml-backend.md §2), with timeouts on every call.

One :class:`MLClient` per server process (built at start-up, closed at shutdown): a thread-safe
``httpx.Client`` with keep-alive connections, the ``User-Agent: label-studio/`` header, and
Label Studio's URL joining. Every call is normalised into a :class:`Reply` and never raises.

It also remembers which backends failed to answer lately (not reachable, or timed out): live
prediction rounds skip such a backend for ``ml_retry_after`` seconds instead of paying a timeout
on every request; and at most ``ml_live_concurrency`` live rounds wait on backends at once, so
a hung backend can never take all the server's worker threads.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from server.settings import Settings

log = logging.getLogger(__name__)
USER_AGENT = "label-studio/"
LOCAL_HOSTS = ("0.0.0.0", "localhost", "127.0.0.1")


@dataclass(frozen=True)
class Reply:
    """A backend's answer: ``ok`` with the parsed JSON ``body``, or an ``error`` message.
    ``status`` is the HTTP status, 0 when the backend could not be reached."""

    ok: bool
    status: int
    body: Any = None
    error: str = ""

    @property
    def unreachable(self) -> bool:
        return not self.ok and self.status == 0


def endpoint_url(base: str, path: str) -> str:
    """``path`` relative to the backend URL with a trailing ``/`` added (§2):
    ``http://h:9090`` -> ``http://h:9090/predict``, ``http://h/ml/`` -> ``http://h/ml/predict``."""
    if not base.endswith("/"):
        base += "/"
    return urljoin(base, path)


def ls_hostname(settings: Settings) -> str:
    """The ``hostname`` sent to ``/setup`` (§3.2): protocol + host, with the port for local
    hosts; ``0.0.0.0`` becomes ``localhost``."""
    host = settings.host
    if host in LOCAL_HOSTS:
        return f"http://{'localhost' if host == '0.0.0.0' else host}:{settings.port}"
    return f"http://{host}"


class MLClient:
    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.hostname = ls_hostname(settings)
        self._http = httpx.Client(
            headers={"User-Agent": USER_AGENT},
            timeout=self._timeout(settings.ml_health_timeout),
            transport=transport,
        )
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._live_slots = threading.BoundedSemaphore(settings.ml_live_concurrency)

    def close(self) -> None:
        self._http.close()

    def _timeout(self, read: float) -> httpx.Timeout:
        return httpx.Timeout(read, connect=self.settings.ml_connect_timeout)

    # -- the calls --------------------------------------------------------------------------

    def health(self, url: str) -> Reply:
        return self.call("GET", url, "health", timeout=self.settings.ml_health_timeout)

    def setup(self, url: str, name: str, label_config_line: str) -> Reply:
        body = {"project": name, "schema": label_config_line, "hostname": self.hostname}
        return self.call("POST", url, "setup", body, timeout=self.settings.ml_setup_timeout)

    def predict(
        self, url: str, name: str, tasks: list[dict[str, Any]], version: str | None, line: str
    ) -> Reply:
        body = {
            "tasks": tasks,
            "model_version": version,
            "project": name,
            "label_config": line,
            "params": {"force_load": True, "login": "", "password": ""},
        }
        return self.call("POST", url, "predict", body, timeout=self.settings.ml_predict_timeout)

    def is_training(self, url: str, name: str) -> Reply:
        # Plain concatenation, as Label Studio (§3.4); httpx still escapes what it must.
        path = "is_training?project=" + name
        return self.call("GET", url, path, timeout=self.settings.ml_health_timeout)

    def job_status(self, url: str, job: str) -> Reply:
        body = {"job": job}
        return self.call("POST", url, "job_status", body, timeout=self.settings.ml_health_timeout)

    def train(self, url: str, body: dict[str, Any]) -> Reply:
        return self.call("POST", url, "train", body, timeout=self.settings.ml_train_timeout)

    def delete(self, url: str, name: str) -> Reply:
        body = {"project": name}
        return self.call("POST", url, "delete", body, timeout=self.settings.ml_health_timeout)

    def call(self, method: str, url: str, path: str, body: Any = None, *, timeout: float) -> Reply:
        """One request, normalised as Label Studio does (§2): a transport failure is status 0,
        a status >= 400 or a body that is not JSON is an error."""
        target = endpoint_url(url, path)
        try:
            response = self._http.request(
                method,
                target,
                json=body if method == "POST" else None,
                timeout=self._timeout(timeout),
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            self._mark(url, reachable=False)
            message = str(exc) or type(exc).__name__
            log.warning("ML backend %s: %s %s failed: %s", url, method, path, message)
            return Reply(ok=False, status=0, error=message)
        self._mark(url, reachable=True)
        if response.status_code >= 400 or response.status_code < 200:
            log.warning("ML backend %s: %s %s answered %d", url, method, path, response.status_code)
            return Reply(ok=False, status=response.status_code, error=response.text)
        try:
            parsed = response.json()
        except ValueError as exc:
            return Reply(ok=False, status=response.status_code, error=f"not JSON: {exc}")
        return Reply(ok=True, status=response.status_code, body=parsed)

    # -- protection of live requests --------------------------------------------------------

    def _mark(self, url: str, *, reachable: bool) -> None:
        with self._lock:
            if reachable:
                self._failed_at.pop(url, None)
            else:
                self._failed_at[url] = time.monotonic()

    def recently_failed(self, url: str) -> bool:
        """True while ``url`` failed to answer less than ``ml_retry_after`` seconds ago."""
        with self._lock:
            since = self._failed_at.get(url)
        return since is not None and time.monotonic() - since < self.settings.ml_retry_after

    @contextlib.contextmanager
    def live_slot(self) -> Iterator[bool]:
        """A slot for one live prediction round; yields False (without waiting) when all
        ``ml_live_concurrency`` slots are taken."""
        acquired = self._live_slots.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                self._live_slots.release()
