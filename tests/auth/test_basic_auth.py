"""Label Studio 0.9.1's HTTP Basic auth, exactly as rest-api.md §11 describes it."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.basic_auth import BODY, BasicCredential, decode_basic
from server.settings import Settings

LS_BODY = (
    "Could not verify your access level for that URL.\nYou have to login with proper credentials"
)


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(dataclasses.replace(settings, password="s3cret pass"))) as c:
        yield c


PROTECTED = [
    ("GET", "/api/project"),
    ("GET", "/api/tasks"),
    ("DELETE", "/api/tasks"),
    ("POST", "/api/project/import"),
    ("GET", "/api/models"),
    ("GET", "/version"),
    ("GET", "/data/upload/missing.png"),
    ("GET", "/data/export/missing.zip"),
    ("GET", "/graphql"),
    ("POST", "/graphql"),
    ("GET", "/"),
    ("GET", "/samples/time-series.csv"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_without_the_credential_every_route_answers_label_studios_401(
    guarded: TestClient, method: str, path: str
) -> None:
    answer = guarded.request(method, path)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="Login Required"'
    assert answer.text == LS_BODY
    assert answer.content == BODY


def test_every_rest_route_is_guarded(guarded: TestClient) -> None:
    from rest_compat._http import ENDPOINTS

    for endpoint in ENDPOINTS:
        if endpoint.path == "/api/health":
            continue
        path = endpoint.path.replace("{task_id}", "1").replace("{completion_id}", "1")
        path = path.replace("{import_id}", "1")
        answer = guarded.request(endpoint.method, path)
        assert answer.status_code == 401, (endpoint.method, path)
        assert answer.text == ("" if endpoint.method == "HEAD" else LS_BODY)


def test_the_right_credential_opens_everything(guarded: TestClient) -> None:
    answer = guarded.get("/api/project", headers=basic("ls", "s3cret pass"))
    assert answer.status_code == 200
    assert answer.json()["project_name"]
    answer = guarded.post(
        "/graphql", json={"query": "{ project { id } }"}, headers=basic("ls", "s3cret pass")
    )
    assert answer.json()["data"]["project"]["id"]


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("ls", "wrong"),
        ("LS", "s3cret pass"),
        ("ls", "s3cret pass "),
        ("other", "s3cret pass"),
        ("", ""),
    ],
)
def test_anything_but_an_exact_match_is_refused(
    guarded: TestClient, username: str, password: str
) -> None:
    answer = guarded.get("/api/project", headers=basic(username, password))
    assert answer.status_code == 401
    assert answer.text == LS_BODY


def test_malformed_headers_are_refused_not_crashed(guarded: TestClient) -> None:
    for header in (
        "Basic",
        "Basic !!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Digest x",
    ):
        answer = guarded.get("/api/project", headers={"Authorization": header})
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Basic realm="Login Required"'


def test_health_and_static_assets_stay_open(guarded: TestClient) -> None:
    assert guarded.get("/api/health").json() == {"status": "up"}
    assert guarded.get("/static/samples/missing.png").status_code == 404


def test_the_user_name_is_configurable(settings: Settings) -> None:
    custom = dataclasses.replace(settings, username="annie", password="pw")
    with TestClient(create_app(custom)) as client:
        assert client.get("/api/project", headers=basic("annie", "pw")).status_code == 200
        assert client.get("/api/project", headers=basic("ls", "pw")).status_code == 401


def test_an_empty_password_means_no_basic_auth(client: TestClient) -> None:
    assert client.get("/api/project").status_code == 200
    assert BasicCredential.configured("ls", "") is None


def test_settings_come_from_the_environment(tmp_path: object) -> None:
    environ = {"LABELGRAPH_USERNAME": "u", "LABELGRAPH_PASSWORD": "pw-in-env"}
    settings = Settings.from_env(environ)
    assert (settings.username, settings.password) == ("u", "pw-in-env")
    assert "pw-in-env" not in repr(settings)


def test_never_in_multi_session_mode(multi_settings: Settings) -> None:
    """Label Studio's start-multi-session never asks for Basic auth (rest-api.md §7.5)."""
    with TestClient(create_app(dataclasses.replace(multi_settings, password="pw"))) as client:
        assert client.get("/api/project").status_code == 200


def test_decode_basic_splits_at_the_first_colon() -> None:
    header = b"Basic " + base64.b64encode(b"ls:pa:ss")
    assert decode_basic(header) == (b"ls", b"pa:ss")


def test_a_short_secret_key_is_refused() -> None:
    with pytest.raises(ValueError, match="secret_key"):
        Settings.from_env({"LABELGRAPH_SECRET_KEY": "short"})
