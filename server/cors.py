"""Cross-origin writes: refused unless the origin is listed in ``cors_origins``.

Label Studio answered every ``/api`` request with ``Access-Control-Allow-Origin: *`` and let
preflights through for DELETE with a JSON body, so any web page a user visited could delete
their tasks or import data into the server on their machine. A browser names the page that
sent a request in the ``Origin`` header (on every cross-origin request and every POST) and, in
current browsers, says ``Sec-Fetch-Site: cross-site|same-site``. With those:

* reads (GET, HEAD) are never refused; ``/api`` keeps Label Studio's ``*`` for them;
* a write (any other method but OPTIONS) from another origin, also a "simple" form POST that
  needs no preflight, is refused with 403 unless the origin is listed;
* preflights: listed origins get the methods, the requested headers and credentials; others
  may preflight reads only;
* requests without ``Origin`` (curl, scripts, same-origin GETs) pass unchanged.

"Same origin" compares the Origin's host and port with the ``Host`` header, which
``server.host_check`` has vetted against DNS rebinding.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.http_refusal import Headers, send_refusal

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS_SITE = frozenset({b"cross-site", b"same-site"})
ALLOW_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE"
PREFLIGHT_MAX_AGE = b"600"
DEFAULT_PORTS = {"http": 80, "https": 443}
REFUSED_CODE = "CROSS_ORIGIN_FORBIDDEN"


def normalise_origin(raw: str) -> str | None:
    """``scheme://host[:port]`` in the form browsers send (lower case, no default port);
    None when ``raw`` is not an http(s) origin."""
    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def parse_origins(raw: str) -> frozenset[str]:
    """The ``cors_origins`` setting: comma-separated origins, each ``scheme://host[:port]``."""
    origins: set[str] = set()
    for item in raw.split(","):
        if not item.strip():
            continue
        origin = normalise_origin(item)
        if origin is None:
            raise ValueError(
                f"cors_origins: {item.strip()!r} is not an origin: write "
                "scheme://host[:port] (http or https, no path; * is not accepted)"
            )
        origins.add(origin)
    return frozenset(origins)


def same_origin(origin: str, host: str | None) -> bool:
    """Whether the page at ``origin`` is this server as the browser reached it (``Host``).

    The scheme is not compared (a TLS-terminating proxy may talk http to us); the host name and
    port are, with the origin scheme's default port when the Host header has none."""
    if host is None:
        return False
    normalised = normalise_origin(origin)
    if normalised is None:
        return False
    scheme, authority = normalised.split("://", 1)
    host = host.strip().lower()
    default_port = f":{DEFAULT_PORTS[scheme]}"
    if host.endswith(default_port):
        host = host[: -len(default_port)]
    return authority == host


class CrossOriginGuard:
    """Pure ASGI middleware applying the policy in the module docstring."""

    def __init__(self, app: ASGIApp, allowed_origins: frozenset[str]) -> None:
        self.app = app
        self.allowed_origins = allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = host = fetch_site = request_method = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
            elif name == b"sec-fetch-site":
                fetch_site = value.lower()
            elif name == b"access-control-request-method":
                request_method = value.decode("latin-1").strip().upper()
        listed = origin is not None and normalise_origin(origin) in self.allowed_origins
        method = scope["method"]
        if method == "OPTIONS" and origin is not None and request_method is not None:
            await self._preflight(scope, send, origin, listed, request_method)
            return
        cross = fetch_site in CROSS_SITE or (origin is not None and not same_origin(origin, host))
        if cross and method not in SAFE_METHODS and not listed:
            log.warning("refused a cross-origin %s %s from %r", method, scope["path"], origin)
            detail = (
                f"Cross-origin {method} requests from {origin or 'another site'} are not "
                "allowed; list the origin in --cors-origins (LABELGRAPH_CORS_ORIGINS) to allow it"
            )
            vary = [(b"vary", b"Origin")]
            await send_refusal(scope, send, 403, REFUSED_CODE, detail, headers=vary)
            return
        if listed:
            assert origin is not None
            await self.app(scope, receive, _granting(send, origin))
        elif self.allowed_origins:
            await self.app(scope, receive, _varying(send))
        else:
            await self.app(scope, receive, send)

    async def _preflight(
        self, scope: Scope, send: Send, origin: str, listed: bool, request_method: str
    ) -> None:
        headers: Headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if listed:
            requested = _header(scope, b"access-control-request-headers") or b"Content-Type"
            headers += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
                (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-allow-headers", requested),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            ]
        elif request_method in SAFE_METHODS:
            headers += [
                (b"access-control-allow-origin", b"*"),
                (b"access-control-allow-methods", b"GET, HEAD"),
                (b"access-control-allow-headers", b"Content-Type"),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            ]
        else:
            detail = (
                f"Cross-origin {request_method} requests from {origin} are not allowed; list "
                "the origin in --cors-origins (LABELGRAPH_CORS_ORIGINS) to allow it"
            )
            await send_refusal(scope, send, 403, REFUSED_CODE, detail, headers=headers[:1])
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _granting(send: Send, origin: str) -> Send:
    """Answers to a listed origin: that origin (not ``*``) with credentials."""

    async def with_grant(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (k, v)
                for k, v in message.get("headers", [])
                if k.lower()
                not in (b"access-control-allow-origin", b"access-control-allow-credentials")
            ]
            headers += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
            ]
            message = {**message, "headers": _add_vary(headers)}
        await send(message)

    return with_grant


def _varying(send: Send) -> Send:
    """With listed origins, answers depend on Origin: tell caches so."""

    async def with_vary(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": _add_vary(list(message.get("headers", [])))}
        await send(message)

    return with_vary


def _add_vary(headers: Headers) -> Headers:
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            if b"origin" not in value.lower():
                headers[index] = (name, value + b", Origin")
            return headers
    return [*headers, (b"vary", b"Origin")]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None
