"""The HTTP client that talks to ML backends (ml-backend.md §2), with timeouts on every call.

One :class:`MLClient` per server process (built at start-up, closed at shutdown): a thread-safe
``httpx.Client`` with keep-alive connections, the ``User-Agent: label-studio/`` header, and
Label Studio's URL joining. Every call is normalised into a :class:`Reply` and never raises.

It also remembers which backends failed to answer lately (not reachable, or timed out): live
prediction rounds skip such a backend for ``ml_retry_after`` seconds instead of paying a timeout
on every request; and at most ``ml_live_concurrency`` live rounds wait on backends at once, so
a hung backend can never take all the server's worker threads.

Backends are hosts a client named, so requests to them are guarded against server-side request
forgery: unless the backend is ``trusted`` (the operator gave it with ``--ml-backends``) or
``LABELGRAPH_ML_ALLOW_PRIVATE`` is on, every address its host resolves to must be public, and
the connection goes to a vetted address (:class:`GuardedNetwork`); redirects are not followed.
What a backend answers besides its JSON is never passed on: an error is its status code in our
own words (the body goes to the log, shortened), so the server cannot be used to read pages of
internal hosts.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin

import httpcore
import httpx

from server.services.net_guard import AddressRefused, vetted_addresses
from server.settings import Settings
from server.tls import httpx_context

log = logging.getLogger(__name__)
USER_AGENT = "label-studio/"
LOCAL_HOSTS = ("0.0.0.0", "localhost", "127.0.0.1")
ML_SWITCH = "LABELGRAPH_ML_ALLOW_PRIVATE"
LOGGED_BODY = 300  # characters of a failing backend's answer kept in the log


class Backend(Protocol):
    """What a call needs to know of a backend (an ``MLBackend`` row, or :class:`Target`)."""

    @property
    def url(self) -> str: ...

    @property
    def trusted(self) -> bool | None: ...


@dataclass(frozen=True)
class Target:
    """A backend URL not stored yet (``trusted``: given by the operator)."""

    url: str
    trusted: bool = False


class GuardedNetwork(httpcore.SyncBackend):
    """TCP connections only to public addresses: the host is resolved once and the connection
    opened to a vetted address (TLS still checks the host name)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = vetted_addresses(host, port, allow_private=False, switch=ML_SWITCH)
        except AddressRefused as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure


def guarded_transport() -> httpx.HTTPTransport:
    """An httpx transport whose connections go through :class:`GuardedNetwork`."""
    transport = httpx.HTTPTransport(verify=httpx_context())
    limits = httpx.Limits()
    transport._pool = httpcore.ConnectionPool(  # the pool httpx would make, guarded
        ssl_context=httpx_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedNetwork(),
    )
    return transport


def refusal(exc: BaseException) -> AddressRefused | None:
    """The address refusal behind a transport error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def transport_error(exc: httpx.HTTPError) -> str:
    """A failed request in our own words."""
    refused = refusal(exc)
    if refused is not None:
        return f"not allowed: {refused}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect"
    return f"request failed ({type(exc).__name__})"


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

        def http(guarded: bool) -> httpx.Client:
            chosen = transport or (guarded_transport() if guarded else None)
            return httpx.Client(
                headers={"User-Agent": USER_AGENT},
                timeout=self._timeout(settings.ml_health_timeout),
                transport=chosen,
                verify=httpx_context(),
                follow_redirects=False,
            )

        self._http = http(guarded=False)  # trusted backends, or all of them when allowed
        self._guarded = self._http if settings.ml_allow_private else http(guarded=True)
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._live_slots = threading.BoundedSemaphore(settings.ml_live_concurrency)

    def close(self) -> None:
        self._http.close()
        self._guarded.close()

    def _timeout(self, read: float) -> httpx.Timeout:
        return httpx.Timeout(read, connect=self.settings.ml_connect_timeout)

    # -- the calls --------------------------------------------------------------------------

    def health(self, url: Backend | str) -> Reply:
        return self.call("GET", url, "health", timeout=self.settings.ml_health_timeout)

    def setup(self, url: Backend | str, name: str, label_config_line: str) -> Reply:
        body = {"project": name, "schema": label_config_line, "hostname": self.hostname}
        return self.call("POST", url, "setup", body, timeout=self.settings.ml_setup_timeout)

    def predict(
        self,
        url: Backend | str,
        name: str,
        tasks: list[dict[str, Any]],
        version: str | None,
        line: str,
    ) -> Reply:
        body = {
            "tasks": tasks,
            "model_version": version,
            "project": name,
            "label_config": line,
            "params": {"force_load": True, "login": "", "password": ""},
        }
        return self.call("POST", url, "predict", body, timeout=self.settings.ml_predict_timeout)

    def is_training(self, url: Backend | str, name: str) -> Reply:
        # Plain concatenation, as Label Studio (§3.4); httpx still escapes what it must.
        path = "is_training?project=" + name
        return self.call("GET", url, path, timeout=self.settings.ml_health_timeout)

    def job_status(self, url: Backend | str, job: str) -> Reply:
        body = {"job": job}
        return self.call("POST", url, "job_status", body, timeout=self.settings.ml_health_timeout)

    def train(self, url: Backend | str, body: dict[str, Any]) -> Reply:
        return self.call("POST", url, "train", body, timeout=self.settings.ml_train_timeout)

    def delete(self, url: Backend | str, name: str) -> Reply:
        body = {"project": name}
        return self.call("POST", url, "delete", body, timeout=self.settings.ml_health_timeout)

    def call(
        self, method: str, backend: Backend | str, path: str, body: Any = None, *, timeout: float
    ) -> Reply:
        """One request, normalised as Label Studio does (§2): a transport failure is status 0,
        a status other than 2xx or a body that is not JSON is an error. A plain URL is a
        backend that is not trusted."""
        target = Target(backend) if isinstance(backend, str) else backend
        url = target.url
        http = self._http if target.trusted else self._guarded
        try:
            response = http.request(
                method,
                endpoint_url(url, path),
                json=body if method == "POST" else None,
                timeout=self._timeout(timeout),
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            self._mark(url, reachable=False)
            message = transport_error(exc) if isinstance(exc, httpx.HTTPError) else "bad URL"
            log.warning("ML backend %s: %s %s failed: %s", url, method, path, exc)
            return Reply(ok=False, status=0, error=message)
        self._mark(url, reachable=True)
        status = response.status_code
        if not 200 <= status < 300:  # redirects (3xx) are not followed
            log.warning(
                "ML backend %s: %s %s answered %d: %r",
                url,
                method,
                path,
                status,
                response.text[:LOGGED_BODY],
            )
            return Reply(ok=False, status=status, error=f"the backend answered HTTP {status}")
        try:
            parsed = response.json()
        except ValueError:
            return Reply(
                ok=False, status=status, error=f"the backend answered HTTP {status}, not JSON"
            )
        return Reply(ok=True, status=status, body=parsed)

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
