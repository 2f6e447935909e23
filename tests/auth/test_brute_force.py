"""Failed logins and bad tokens are limited per client address; no password, token or hash
ever reaches a log line, an error or an answer."""

from __future__ import annotations

import base64
import dataclasses
import io
import logging
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from server import db
from server.app import create_app
from server.auth_models import ApiToken, User
from server.logs import configure_logging
from server.rate_limit import FailureLimiter
from server.settings import Settings
from tests.auth.support import PASSWORD, add_user, as_token


@pytest.fixture
def strict(settings: Settings) -> Iterator[TestClient]:
    limited = dataclasses.replace(settings, auth_rate_limit=3)
    with TestClient(create_app(limited)) as client:
        yield client


def test_bad_tokens_are_limited_per_address(strict: TestClient) -> None:
    token = add_user(strict, "alice")
    for _ in range(3):
        assert strict.get("/api/project", headers=as_token("lg_wrong")).status_code == 401
    refused = strict.get("/api/project", headers=as_token("lg_wrong"))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["status"] == 429
    # The address is locked out for a while, also with the right token...
    assert strict.get("/api/project", headers=as_token(token)).status_code == 429
    # ...but the health check stays open.
    assert strict.get("/api/health").status_code == 200


def test_failed_logins_are_limited(strict: TestClient) -> None:
    add_user(strict, "alice")
    form = {"username": "alice", "password": "wrong password"}
    for _ in range(3):
        assert strict.post("/login", data=form).status_code == 401
    assert strict.post("/login", data={**form, "password": PASSWORD}).status_code == 429
    mutation = 'mutation { login(username: "alice", password: "wrong password") { id } }'
    body = strict.post("/graphql", json={"query": mutation}).json()
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_ATTEMPTS"


def test_addresses_behind_a_trusted_proxy_are_counted_apart(settings: Settings) -> None:
    limited = dataclasses.replace(settings, auth_rate_limit=2, proxy_headers=True)
    with TestClient(create_app(limited)) as client:
        token = add_user(client, "alice")
        attacker = {"X-Forwarded-For": "203.0.113.9", **as_token("lg_wrong")}
        for _ in range(3):
            client.get("/api/project", headers=attacker)
        assert client.get("/api/project", headers=attacker).status_code == 429
        someone = {"X-Forwarded-For": "198.51.100.7", **as_token(token)}
        assert client.get("/api/project", headers=someone).status_code == 200


def test_basic_auth_failures_are_limited(settings: Settings) -> None:
    limited = dataclasses.replace(settings, auth_rate_limit=2, password="right pw")
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ls:wrong").decode()}
    right = {"Authorization": "Basic " + base64.b64encode(b"ls:right pw").decode()}
    with TestClient(create_app(limited)) as client:
        for _ in range(2):
            assert client.get("/api/project", headers=wrong).status_code == 401
        assert client.get("/api/project", headers=right).status_code == 429


def test_the_limiter_is_bounded_and_forgets_after_its_window() -> None:
    limiter = FailureLimiter(limit=2, window=60, max_clients=100)
    for n in range(1000):
        limiter.failed(f"10.0.{n // 256}.{n % 256}", now=0.0)
    assert limiter.tracked() == 100
    limiter.failed("a", now=0.0)
    limiter.failed("a", now=1.0)
    assert limiter.retry_after("a", now=2.0) == 59
    assert limiter.retry_after("a", now=60.0) == 0
    limiter.failed("a", now=61.0)
    assert limiter.retry_after("a", now=61.0) == 0  # one failure in the new window


def test_no_secret_reaches_logs_errors_or_answers(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    stream = io.StringIO()
    root_level = logging.getLogger().level
    handler = configure_logging("DEBUG", stream)
    answers: list[str] = []
    try:
        caplog.set_level(logging.DEBUG)
        with TestClient(create_app(dataclasses.replace(settings, password="basic secret"))) as c:
            basic = {"Authorization": "Basic " + base64.b64encode(b"ls:basic secret").decode()}
            token = add_user(c, "alice", "admin")
            wrong = "lg_" + "x" * 43
            for headers in (as_token(token), as_token(wrong), {**basic}, {}):
                answers.append(c.get("/api/project", headers=headers).text)
                answers.append(
                    c.post("/graphql", json={"query": "{ me { id } }"}, headers=headers).text
                )
            form = c.post("/login", data={"username": "alice", "password": PASSWORD}, headers=basic)
            answers.append(form.text)
            answers.append(
                c.post(
                    "/login",
                    data={"username": "alice", "password": "bad " + PASSWORD},
                    headers=basic,
                ).text
            )
            created = c.post(
                "/graphql",
                json={"query": "mutation { createToken { token } }"},
                headers=as_token(token),
            ).json()["data"]["createToken"]["token"]
            answers.append(c.get("/api/project", headers=as_token(created)).text)
            answers.append(
                c.post(
                    "/graphql",
                    json={"query": "{ myTokens { id name prefix } users { username role } }"},
                    headers=as_token(token),
                ).text
            )
            hashes = [row.token_hash for row in db.with_connection(lambda: list(ApiToken.select()))]
            password_hash = db.with_connection(lambda: User.get()).password_hash
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)
    logged = caplog.text + stream.getvalue()
    assert "SELECT" in logged  # the SQL log was on
    secrets = [
        PASSWORD,
        "bad " + PASSWORD,
        "basic secret",
        token,
        wrong,
        created,
        password_hash,
        *hashes,
        password_hash.rsplit("$", 1)[-1],
    ]
    for secret in secrets:
        assert secret not in logged, secret[:8]
        assert all(secret not in answer for answer in answers), secret[:8]
