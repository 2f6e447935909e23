"""Storages are hosts a client names (an S3, GCS or Azure ``endpoint_url``, a Redis ``host``):
unless the operator allows it (``LABELGRAPH_STORAGE_ALLOW_PRIVATE``), or configured the endpoint
(``LABELGRAPH_S3_ENDPOINT``), their addresses must be public (:mod:`server.services.net_guard`).

Redis clients get the vetted address itself; boto3 clients, and the ``requests`` sessions that
the GCS and Azure clients are given, get connection classes that resolve the host once per
connection and connect to a vetted address (TLS and request signing keep the host name), so
DNS rebinding cannot take them elsewhere.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from server.services.net_guard import AddressRefused, vetted_addresses

STORAGE_SWITCH = "LABELGRAPH_STORAGE_ALLOW_PRIVATE"


def vetted_address(host: str, port: int) -> str:
    """The address to connect to for ``host``; :class:`AddressRefused` when not public."""
    return vetted_addresses(host, port, allow_private=False, switch=STORAGE_SWITCH)[0]


def check_endpoint(endpoint: str) -> None:
    """Refuse an endpoint URL whose host is not public (before any request is made)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused(f"the endpoint URL {endpoint!r} is not an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise AddressRefused(f"the endpoint URL {endpoint!r} has a bad port") from None
    vetted_address(parts.hostname, port)


def _vetted_connection(base: Any) -> Any:
    """A subclass of urllib3 connection class ``base`` that connects to a vetted address."""
    from urllib3.exceptions import NewConnectionError

    class Vetted(base):  # type: ignore[misc]
        _dns_host: str  # urllib3's host to connect to (its connections set it in __init__)

        def _new_conn(self) -> socket.socket:
            named: str = self._dns_host
            try:
                address = vetted_address(named.rstrip("."), self.port)
            except AddressRefused as exc:
                raise NewConnectionError(self, f"Refused: {exc}") from exc
            # Only the TCP connection uses the address: TLS (after this) checks the name.
            self._dns_host = address
            try:
                return super()._new_conn()  # type: ignore[no-any-return]
            finally:
                self._dns_host = named

    Vetted.__name__ = f"Vetted{base.__name__}"
    return Vetted


def guard_boto3_client(client: Any) -> None:
    """Make every connection of a boto3 client go to vetted addresses only."""
    from botocore.awsrequest import AWSHTTPConnectionPool, AWSHTTPSConnectionPool

    pools = client._endpoint.http_session._pool_classes_by_scheme
    if set(pools) != {"http", "https"}:  # botocore changed: refuse rather than go unguarded
        raise AddressRefused("cannot guard the S3 client's connections")
    for scheme, pool in (("http", AWSHTTPConnectionPool), ("https", AWSHTTPSConnectionPool)):
        pools[scheme] = type(
            f"Vetted{pool.__name__}",
            (pool,),
            {"ConnectionCls": _vetted_connection(pool.ConnectionCls)},
        )


def prepare_session(session: Any, *, guarded: bool) -> Any:
    """Set up a ``requests`` session (google-auth's ``AuthorizedSession`` included) for the GCS
    and Azure clients: environment proxies ignored (a proxy would make the connection, not us)
    and, when ``guarded``, connections made only to vetted addresses."""
    from requests.adapters import HTTPAdapter
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    session.trust_env = False
    if not guarded:
        return session
    pools = {
        scheme: type(
            f"Vetted{pool.__name__}",
            (pool,),
            {"ConnectionCls": _vetted_connection(pool.ConnectionCls)},
        )
        for scheme, pool in (("http", HTTPConnectionPool), ("https", HTTPSConnectionPool))
    }

    class VettedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    for prefix in ("http://", "https://"):
        session.mount(prefix, VettedAdapter())
    return session
