"""The ML backend HTTP client: URL joining, headers, timeouts, normalised answers (§2)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from server.services.ml.client import MLClient, endpoint_url, ls_hostname
from server.settings import Settings

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., MLClient]]:
    clients: list[MLClient] = []

    def make(handler: Handler, **overrides: Any) -> MLClient:
        configured = dataclasses.replace(settings, **overrides)
        client = MLClient(configured, transport=httpx.MockTransport(handler))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_endpoint_urls_are_joined_as_label_studio_does() -> None:
    assert endpoint_url("http://h:9090", "predict") == "http://h:9090/predict"
    assert endpoint_url("http://h:9090/", "predict") == "http://h:9090/predict"
    assert endpoint_url("http://h/ml/", "predict") == "http://h/ml/predict"
    assert endpoint_url("http://h/ml", "predict") == "http://h/ml/predict"
    assert endpoint_url("http://h", "is_training?project=p1") == "http://h/is_training?project=p1"


def test_setup_hostname(settings: Settings) -> None:
    assert ls_hostname(dataclasses.replace(settings, host="0.0.0.0", port=9000)) == (
        "http://localhost:9000"
    )
    assert ls_hostname(dataclasses.replace(settings, host="127.0.0.1")) == "http://127.0.0.1:8080"
    assert ls_hostname(dataclasses.replace(settings, host="labels.example")) == (
        "http://labels.example"
    )


def test_requests_carry_label_studio_headers_json_and_timeouts(
    make_client: Callable[..., MLClient],
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"model_version": "7"})

    client = make_client(handler, ml_connect_timeout=0.7, ml_setup_timeout=3.0)
    reply = client.setup("http://backend:9090", "proj1a2b", "<View></View>")
    assert reply.ok and reply.body == {"model_version": "7"}
    request = seen[0]
    assert str(request.url) == "http://backend:9090/setup"
    assert request.headers["user-agent"] == "label-studio/"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "project": "proj1a2b",
        "schema": "<View></View>",
        "hostname": "http://127.0.0.1:8080",
    }
    assert request.extensions["timeout"] == {"connect": 0.7, "read": 3.0, "write": 3.0, "pool": 3.0}
    client.health("http://backend:9090")
    assert seen[1].method == "GET" and seen[1].content == b""


def test_each_call_has_its_own_read_timeout(make_client: Callable[..., MLClient]) -> None:
    reads: dict[str, float] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        reads[request.url.path] = request.extensions["timeout"]["read"]
        return httpx.Response(200, json={})

    client = make_client(
        handler, ml_health_timeout=1.5, ml_predict_timeout=9.0, ml_train_timeout=60.0
    )
    url = "http://b"
    client.health(url)
    client.predict(url, "n", [{"id": 1}], "v", "<View/>")
    client.train(url, {"completions": []})
    client.is_training(url, "n")
    assert reads == {"/health": 1.5, "/predict": 9.0, "/train": 60.0, "/is_training": 1.5}


def test_answers_are_normalised(make_client: Callable[..., MLClient]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(500, text="boom")
        if request.url.path == "/setup":
            return httpx.Response(200, text="<html>not json</html>")
        if request.url.path == "/is_training":
            return httpx.Response(302, headers={"Location": "http://127.0.0.5/"}, json={})
        raise httpx.ConnectError("connection refused")

    client = make_client(handler)
    # What the backend said is never passed on (it may be an internal page): our words only.
    failed = client.health("http://b")
    assert (failed.ok, failed.status) == (False, 500)
    assert failed.error == "the backend answered HTTP 500"
    junk = client.setup("http://b", "n", "")
    assert not junk.ok and junk.status == 200
    assert junk.error == "the backend answered HTTP 200, not JSON"
    moved = client.is_training("http://b", "n")  # redirects are not followed
    assert (moved.ok, moved.status) == (False, 302)
    down = client.predict("http://b", "n", [], None, "")
    assert (down.ok, down.status, down.unreachable) == (False, 0, True)
    assert down.error == "cannot connect"


def test_a_backend_that_failed_is_remembered_for_a_while(
    make_client: Callable[..., MLClient],
) -> None:
    up = {"value": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if not up["value"]:
            raise httpx.ReadTimeout("timed out")
        return httpx.Response(200, json={"status": "UP"})

    client = make_client(handler, ml_retry_after=0.2)
    assert not client.recently_failed("http://b")
    assert client.health("http://b").unreachable
    assert client.recently_failed("http://b")
    assert not client.recently_failed("http://other")
    time.sleep(0.25)
    assert not client.recently_failed("http://b")
    up["value"] = True
    assert client.health("http://b").ok
    assert not client.recently_failed("http://b")


def test_live_slots_are_bounded(make_client: Callable[..., MLClient]) -> None:
    client = make_client(lambda r: httpx.Response(200, json={}), ml_live_concurrency=2)
    with client.live_slot() as first, client.live_slot() as second, client.live_slot() as third:
        assert (first, second, third) == (True, True, False)
    with client.live_slot() as again:
        assert again
