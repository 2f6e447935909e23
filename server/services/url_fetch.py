"""Download a URL for an import, safely (rest-api.md §6.1 form ``url=``).

Guards against server-side request forgery: only ``http``/``https``; the host name is resolved
once and every address it resolves to must be public (no loopback, private, link-local,
multicast, reserved or unspecified address, IPv4 carried in IPv6 included:
:mod:`server.services.net_guard`) unless the operator allows them; the connection goes to that
vetted address (so a second DNS answer cannot point elsewhere) while the request keeps the host
name (``Host``, TLS SNI and certificate check); each redirect is vetted again. The download has
an overall time limit and a size limit.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from typing import IO
from urllib.parse import urljoin, urlsplit

from server.errors import DomainError
from server.services.net_guard import AddressRefused, is_public, vetted_addresses
from server.tls import system_context

CHUNK = 256 * 1024
REDIRECTS = (301, 302, 303, 307, 308)
IMPORT_SWITCH = "LABELGRAPH_URL_IMPORT_ALLOW_PRIVATE"
__all__ = ["FetchPolicy", "Fetched", "fetch", "is_public"]


@dataclass(frozen=True)
class FetchPolicy:
    timeout: float = 30.0
    max_size: int = 200 * 1024 * 1024
    allow_private: bool = False
    max_redirects: int = 5


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    size: int
    content_type: str | None


def fetch_failed(message: str) -> DomainError:
    return DomainError("fetch_failed", message, {"errors": [message]})


def resolve(host: str, port: int, policy: FetchPolicy) -> str:
    """The address to connect to for ``host``; refused when any answer is not public."""
    try:
        addresses = vetted_addresses(
            host, port, allow_private=policy.allow_private, switch=IMPORT_SWITCH
        )
    except AddressRefused as exc:
        reason = str(exc)
        if "non-public" in reason:
            raise fetch_failed(f"URL imports from {host} are not allowed: {reason}") from None
        raise fetch_failed(reason) from None
    return addresses[0]


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to a given address that still speaks to ``host``."""

    def __init__(
        self, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise fetch_failed("the download timed out")
    return left


def fetch(url: str, out: IO[bytes], policy: FetchPolicy) -> Fetched:
    """Download ``url`` into ``out``; raise ``fetch_failed``/``too_large`` DomainErrors."""
    deadline = time.monotonic() + policy.timeout
    current = url.strip()
    for _ in range(policy.max_redirects + 1):
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https"):
            raise fetch_failed(f"unsupported URL {current!r}: use an http or https URL")
        host = parts.hostname
        if not host:
            raise fetch_failed(f"no host in URL {current!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise fetch_failed(f"bad port in URL {current!r}") from None
        address = resolve(host, port, policy)
        tls = system_context() if parts.scheme == "https" else None
        connection = _PinnedConnection(host, port, address, _remaining(deadline), tls)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            headers = {"User-Agent": "labelgraph", "Accept": "*/*", "Accept-Encoding": "identity"}
            connection.request("GET", target, headers=headers)
            # The response may own the socket (HTTP/1.0): always close it too.
            with contextlib.closing(connection.getresponse()) as response:
                if response.status in REDIRECTS:
                    location = response.getheader("Location")
                    if not location:
                        raise fetch_failed(f"HTTP {response.status} redirect without a Location")
                    current = urljoin(current, location)
                    continue
                if response.status != 200:
                    raise fetch_failed(f"HTTP Error {response.status}: {response.reason}")
                size = _copy(connection.sock, response, out, policy, deadline)
                return Fetched(current, size, response.getheader("Content-Type"))
        except TimeoutError:
            raise fetch_failed("the download timed out") from None
        except ssl.SSLError as exc:
            raise fetch_failed(f"TLS error: {exc.reason or exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise fetch_failed(f"cannot download {current}: {exc}") from None
        finally:
            connection.close()
    raise fetch_failed(f"too many redirects (more than {policy.max_redirects})")


def _copy(
    sock: socket.socket | None,
    response: http.client.HTTPResponse,
    out: IO[bytes],
    policy: FetchPolicy,
    deadline: float,
) -> int:
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > policy.max_size:
        raise _too_large(policy)
    size = 0
    while True:
        left = _remaining(deadline)
        if sock is not None:
            sock.settimeout(left)
        chunk = response.read1(CHUNK)
        if not chunk:
            return size
        size += len(chunk)
        if size > policy.max_size:
            raise _too_large(policy)
        out.write(chunk)


def _too_large(policy: FetchPolicy) -> DomainError:
    message = f"The file at the URL is larger than the limit of {policy.max_size} bytes"
    return DomainError("too_large", message, {"errors": [message]})
