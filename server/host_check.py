"""DNS-rebinding defence: refuse requests whose ``Host`` header names a host we do not serve.

A web page on ``evil.example`` can make its own name resolve to 127.0.0.1 and then talk to a
server on the user's machine as a same-origin page. The browser still sends ``Host:
evil.example``: so a server bound to a loopback address accepts only ``localhost``,
``127.0.0.1`` and ``[::1]`` (with its port) plus the names listed in ``allowed_hosts``. A server
bound to another address (``0.0.0.0``, a LAN address) is reached under names we cannot guess: it
checks the Host header only when ``allowed_hosts`` is set.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from server.http_refusal import send_refusal

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
ANY_HOST = "*"
VERDICTS_KEPT = 256
_NAME = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?)$")
_HOST = re.compile(r"^(?P<name>\[[0-9a-f:.]+\]|[^:\[\]]+)(:(?P<port>[0-9]{1,5}))?$")


def split_host(value: str) -> tuple[str, int | None] | None:
    """``name[:port]`` (IPv6 in brackets) as (lower-case name, port); None when malformed."""
    match = _HOST.match(value.strip().lower())
    if match is None:
        return None
    port = match.group("port")
    return match.group("name"), int(port) if port is not None else None


def parse_allowed_hosts(raw: str) -> frozenset[str]:
    """The ``allowed_hosts`` setting: comma-separated ``name`` or ``name:port`` or ``*``."""
    hosts: set[str] = set()
    for item in raw.split(","):
        item = item.strip().lower()
        if not item:
            continue
        parsed = split_host(item) if item != ANY_HOST else (ANY_HOST, None)
        if parsed is None or (item != ANY_HOST and not _NAME.match(parsed[0])):
            raise ValueError(
                f"allowed_hosts: {item!r} is not a host name, name:port or * "
                "(write IPv6 addresses in brackets: [::1])"
            )
        hosts.add(item)
    return frozenset(hosts)


def is_loopback(bind_host: str) -> bool:
    host = bind_host.strip().lower().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HostRule:
    """Which Host headers a server accepts (see the module docstring)."""

    loopback: bool  # bound to a loopback address: LOOPBACK_NAMES on the server's port
    port: int  # the configured port (the socket's own port is accepted too)
    allowed: frozenset[str]  # names (any port) and name:port entries

    def allows(self, host_header: str, socket_port: int | None) -> bool:
        parsed = split_host(host_header)
        if parsed is None:
            return False
        name, port = parsed
        if name in self.allowed or (port is not None and f"{name}:{port}" in self.allowed):
            return True
        if self.loopback and name in LOOPBACK_NAMES:
            return (port if port is not None else 80) in (self.port, socket_port)
        return False


def host_rule(bind_host: str, port: int, allowed_hosts: str) -> HostRule | None:
    """The rule for a server bound to ``bind_host:port``; None when any Host is accepted."""
    allowed = parse_allowed_hosts(allowed_hosts)
    if ANY_HOST in allowed:
        return None
    loopback = is_loopback(bind_host)
    if not loopback and not allowed:
        return None
    return HostRule(loopback=loopback, port=port, allowed=allowed)


class HostCheck:
    """Answer 400 to requests whose Host header the rule does not allow. Requests without a
    Host header (HTTP/1.0 tools) pass: a browser always sends one."""

    def __init__(self, app: ASGIApp, rule: HostRule) -> None:
        self.app = app
        self.rule = rule
        # Verdicts by (Host header, socket port): a server hears the same few Host headers
        # on every request, and parsing one costs more than this layer's other work.
        self._verdicts: dict[tuple[str, int | None], bool] = {}

    def allows(self, host: str, socket_port: int | None) -> bool:
        key = (host, socket_port)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self.rule.allows(host, socket_port)
            if len(self._verdicts) >= VERDICTS_KEPT:
                self._verdicts.clear()  # many different names: a scan, not our clients
            self._verdicts[key] = verdict
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = _header(scope, b"host")
            server = scope.get("server")
            socket_port = server[1] if server and isinstance(server[1], int) else None
            if host is not None and not self.allows(host, socket_port):
                log.warning("refused a request for host %r (not an allowed host)", host)
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                detail = (
                    f"Host {host!r} is not served here (a DNS rebinding attempt?); to reach "
                    "this server under that name add it to --allowed-hosts "
                    "(LABELGRAPH_ALLOWED_HOSTS)"
                )
                await send_refusal(scope, send, 400, "HOST_NOT_ALLOWED", detail)
                return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
