"""URL downloads for imports: SSRF guards, redirects, limits (server.services.url_fetch)."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.errors import DomainError
from server.services import net_guard
from server.services.url_fetch import FetchPolicy, fetch, is_public
from tests import http_fixtures
from tests.http_fixtures import serve_directory

ALLOW = FetchPolicy(allow_private=True, timeout=5)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "a.txt").write_bytes(b"hello\n")
    with serve_directory(tmp_path) as base:
        yield base


def error(url: str, policy: FetchPolicy) -> DomainError:
    with pytest.raises(DomainError) as caught:
        fetch(url, io.BytesIO(), policy)
    return caught.value


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        # IPv6 forms that carry an IPv4 address are judged by that address too.
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::8.8.8.8", False),  # deprecated form: not a global IPv6 address either
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::808:808", False),  # local-use NAT64 (RFC 8215)
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo: client 127.0.0.1
        ("::ffff:10.0.0.1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_download_when_allowed(site: str) -> None:
    out = io.BytesIO()
    fetched = fetch(f"{site}/a.txt", out, ALLOW)
    assert out.getvalue() == b"hello\n"
    assert fetched.size == 6 and fetched.url == f"{site}/a.txt"


def test_loopback_is_refused_by_default(site: str) -> None:
    exc = error(f"{site}/a.txt", FetchPolicy())
    assert exc.code == "fetch_failed"
    assert "non-public address 127.0.0.1" in exc.message


@pytest.mark.parametrize("host", ["[::127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::1]"])
def test_ipv6_forms_of_loopback_are_refused(site: str, host: str) -> None:
    port = int(site.rsplit(":", 1)[1])
    exc = error(f"http://{host}:{port}/a.txt", FetchPolicy())
    assert exc.code == "fetch_failed"
    assert f"non-public address {host.strip('[]')}" in exc.message


def test_names_resolving_to_private_addresses_are_refused(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(site.rsplit(":", 1)[1])
    exc = error(f"http://localhost:{port}/a.txt", FetchPolicy())
    assert "not allowed" in exc.message
    real = socket.getaddrinfo

    def fake(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "public.example":  # a "public" name whose DNS answer is the metadata IP
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    exc = error(f"http://public.example:{port}/a.txt", FetchPolicy())
    assert "169.254.169.254" in exc.message


def test_connection_goes_to_the_vetted_address_with_the_host_name(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(site.rsplit(":", 1)[1])
    resolved: list[str] = []
    real = socket.getaddrinfo

    def fake(host: str, *args: Any, **kwargs: Any) -> Any:
        resolved.append(host)
        if host == "tasks.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    http_fixtures.HOSTS_SEEN.clear()
    out = io.BytesIO()
    fetch(f"http://tasks.example:{port}/a.txt", out, ALLOW)
    assert out.getvalue() == b"hello\n"
    # The name is resolved once (the connection then uses the address itself, no new answer).
    assert [host for host in resolved if host != "127.0.0.1"] == ["tasks.example"]
    seen = http_fixtures.HOSTS_SEEN
    assert seen == [f"tasks.example:{port}"]


def test_redirects_are_vetted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.txt").write_bytes(b"inner\n")
    with (
        serve_directory(tmp_path, "127.0.0.1") as outer,
        serve_directory(tmp_path, "127.0.0.2") as inner,
    ):
        # Pretend 127.0.0.1 were public: the redirect to 127.0.0.2 must still be refused.
        monkeypatch.setattr(net_guard, "is_public", lambda address: address == "127.0.0.1")
        exc = error(f"{outer}/redirect?to={inner}/a.txt", FetchPolicy())
        assert "non-public address 127.0.0.2" in exc.message
        out = io.BytesIO()
        fetched = fetch(f"{outer}/redirect?to=/a.txt", out, FetchPolicy())
        assert out.getvalue() == b"inner\n" and fetched.url == f"{outer}/a.txt"
        loop = f"{outer}/redirect?to={outer}/redirect%3Fto%3D/redirect"
        exc = error(loop, FetchPolicy(max_redirects=1))
        assert "too many redirects" in exc.message


def test_size_and_time_limits(site: str) -> None:
    exc = error(f"{site}/big", FetchPolicy(allow_private=True, max_size=50_000))
    assert exc.code == "too_large"
    assert "larger than the limit of 50000 bytes" in exc.message
    exc = error(f"{site}/slow", FetchPolicy(allow_private=True, timeout=0.5))
    assert exc.code == "fetch_failed" and "timed out" in exc.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "use an http or https URL"),
        ("ftp://example.com/x", "use an http or https URL"),
        ("http:///nohost", "no host in URL"),
        ("http://no-such-host.invalid/x", "cannot resolve host"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    assert message in error(url, FetchPolicy()).message
