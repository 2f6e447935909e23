"""Which addresses the server may connect to on a user's behalf (server-side request forgery).

URL imports, ML backends added through the API and S3/Redis storages all open connections to
hosts a client named. Unless the operator allowed it, every address such a host resolves to
must be a public unicast address; IPv6 forms that carry an IPv4 address (mapped ``::ffff:``,
NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo ``2001::/32``) are judged by the IPv4
address they carry too; the deprecated IPv4-compatible ``::a.b.c.d`` and local-use NAT64
``64:ff9b:1::/48`` are never public. Callers resolve a host once with
:func:`vetted_addresses` and connect to one of the addresses it returns, so that a second DNS
answer cannot point elsewhere (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket

NAT64 = ipaddress.ip_network("64:ff9b::/96")
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: operator-chosen, never public
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(OSError):
    """A host resolves to an address the policy refuses (or does not resolve at all)."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (empty for a plain IPv6 address)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _public(ip: IPAddress) -> bool:
    return ip.is_global and not ip.is_multicast


def is_public(address: str) -> bool:
    """Whether an IP address is a public unicast address, IPv4 carried in IPv6 included."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in LOCAL_NAT64 or ip in IPV4_COMPATIBLE:  # the latter deprecated (RFC 4291)
            return False
        embedded = _embedded_ipv4(ip)
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is that IPv4 address, nothing more
            return _public(ip.ipv4_mapped)
        if embedded and not all(_public(v4) for v4 in embedded):
            return False
        if ip in NAT64:  # a translator's prefix: as public as the address it reaches
            return True
    return _public(ip)


def vetted_addresses(host: str, port: int, *, allow_private: bool, switch: str) -> list[str]:
    """The addresses of ``host`` to connect to, in resolver order; :class:`AddressRefused`
    when it does not resolve, or when any answer is not public and ``allow_private`` is off
    (``switch`` names the setting that allows it, for the message)."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AddressRefused(f"cannot resolve host {host!r}: {exc}") from None
    addresses = list(dict.fromkeys(str(answer[4][0]) for answer in answers))
    if not addresses:
        raise AddressRefused(f"cannot resolve host {host!r}")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise AddressRefused(
                    f"{host} resolves to the non-public address {address} (an operator can "
                    f"allow such addresses with {switch})"
                )
    return addresses


def connect_vetted(
    host: str,
    port: int,
    timeout: float | None,
    *,
    allow_private: bool,
    switch: str,
) -> socket.socket:
    """A TCP connection to ``host``, opened to one of its vetted addresses (tried in order)."""
    last: OSError | None = None
    for address in vetted_addresses(host, port, allow_private=allow_private, switch=switch):
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            last = exc
    assert last is not None
    raise last
