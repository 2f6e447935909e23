"""Sign and POST one webhook body, guarded like URL imports.

The body is signed with HMAC-SHA256 keyed by the webhook's secret; the hex digest travels in
``X-Labelgraph-Signature-256: sha256=<hex>`` (a receiver computes the same over the raw body
and compares in constant time). ``X-Labelgraph-Delivery`` is the delivery id, the same on
every retry (receivers can drop repeats), ``X-Labelgraph-Event`` the action.

The host is resolved once per attempt and, unless the operator allows private addresses,
every answer must be public; the connection goes to that vetted address
(:mod:`server.services.net_guard`, as :mod:`server.services.url_fetch`). Redirects are not
followed. Nothing a receiver answers is trusted: only its status and the start of its body are
kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from server.services.net_guard import AddressRefused, vetted_addresses
from server.services.url_fetch import _PinnedConnection
from server.services.webhooks.registry import WEBHOOK_SWITCH
from server.tls import system_context
from server.version import __version__

SIGNATURE_HEADER = "X-Labelgraph-Signature-256"
DELIVERY_HEADER = "X-Labelgraph-Delivery"
EVENT_HEADER = "X-Labelgraph-Event"
KEPT_RESPONSE = 1000  # characters of an answer kept with the attempt


@dataclass(frozen=True)
class Outcome:
    duration: float
    status_code: int | None = None
    response: str | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature(secret: str, body: bytes) -> str:
    """The value of :data:`SIGNATURE_HEADER` for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    allow_private: bool,
) -> Outcome:
    started = time.monotonic()

    def outcome(**values: object) -> Outcome:
        return Outcome(duration=time.monotonic() - started, **values)  # type: ignore[arg-type]

    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = vetted_addresses(host, port, allow_private=allow_private, switch=WEBHOOK_SWITCH)[
            0
        ]
    except (AddressRefused, ValueError) as exc:
        return outcome(error=f"not sent: {exc}")
    tls = system_context() if parts.scheme == "https" else None
    connection = _PinnedConnection(host, port, address, timeout, tls)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = {
        **headers,
        "Content-Type": "application/json",
        "User-Agent": f"labelgraph/{__version__}",
    }
    try:
        connection.request("POST", target, body=body, headers=sent)
        with contextlib.closing(connection.getresponse()) as response:
            text = response.read(KEPT_RESPONSE * 4).decode("utf-8", "replace")[:KEPT_RESPONSE]
            return outcome(status_code=response.status, response=text)
    except TimeoutError:
        return outcome(error=f"timed out after {timeout:g} s")
    except ssl.SSLError as exc:
        return outcome(error=f"TLS error: {exc.reason or exc}")
    except (OSError, http.client.HTTPException) as exc:
        return outcome(error=f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
