"""TLS client contexts are built once per process, not per ML client, webhook or download:
each build loads a CA bundle (tens of milliseconds of CPU)."""

from __future__ import annotations

import io
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from server import tls
from server.errors import DomainError
from server.services.ml.client import MLClient
from server.services.url_fetch import FetchPolicy, fetch
from server.services.webhooks.sender import post
from server.settings import Settings


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every ``ssl.create_default_context`` call from now on (with fresh caches)."""
    made: list[dict[str, Any]] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    tls.system_context.cache_clear()
    tls.httpx_context.cache_clear()
    yield made
    tls.system_context.cache_clear()
    tls.httpx_context.cache_clear()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ml_clients_share_one_context(settings: Settings, builds: list[dict[str, Any]]) -> None:
    guarded = settings  # the default refuses private addresses: a second, guarded client
    trusting = Settings.from_env({}, project_dir=settings.project_dir, ml_allow_private=True)
    for each in (guarded, trusting, guarded):
        MLClient(each).close()
    assert len(builds) == 1
    assert "cafile" in builds[0]  # httpx's own CA bundle, as a plain httpx.Client uses


def test_webhooks_and_downloads_share_one_context(builds: list[dict[str, Any]]) -> None:
    url = f"https://127.0.0.1:{closed_port()}/hook"
    for _ in range(3):
        outcome = post(url, b"{}", {}, timeout=2, allow_private=True)
        assert outcome.error  # nothing listens there; the context was made all the same
        with pytest.raises(DomainError):
            fetch(url, io.BytesIO(), FetchPolicy(timeout=2, allow_private=True))
    assert builds == [{}]  # Python's default: the system's CA certificates
