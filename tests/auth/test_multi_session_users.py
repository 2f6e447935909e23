"""Multi-session mode with users: a session's projects belong to its signed-in user, and
switching to another user's project needs a share by an admin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from tests.auth.support import add_user, as_token, gql
from tests.conftest import fixture_text


@pytest.fixture
def app(multi_settings: Settings) -> Iterator[Any]:
    application = create_app(multi_settings)
    with TestClient(application):
        yield application


def browser(app: Any, token: str) -> TestClient:
    """A client that keeps its session cookie and sends the token."""
    client = TestClient(app)
    client.headers.update(as_token(token))
    return client


def project_of(client: TestClient) -> dict[str, Any]:
    body = gql(client, "{ project { uuid name } }")
    assert "errors" not in body, body
    project: dict[str, Any] = body["data"]["project"]
    return project


def test_projects_follow_the_user_and_need_a_share(app: Any) -> None:
    setup = TestClient(app)
    tokens = {
        "root": add_user(setup, "root", "admin"),
        "owner": add_user(setup, "owner", "admin"),
        "alice": add_user(setup, "alice"),
    }
    owner = browser(app, tokens["owner"])
    config = {"label_config": fixture_text("configs/sentiment.xml")}
    assert owner.post("/api/project/config", data=config).status_code == 201
    owned = project_of(owner)
    owner_id = gql(owner, "{ me { id } }")["data"]["me"]["id"]
    assert owned["name"].startswith(f"user-{owner_id}/")

    alice = browser(app, tokens["alice"])
    mine = project_of(alice)
    alice_id = gql(alice, "{ me { id } }")["data"]["me"]["id"]
    assert mine["name"].startswith(f"user-{alice_id}/")
    # Knowing the uuid is not enough any more.
    refused = alice.post(f"/api/project-switch?uuid={owned['uuid']}")
    assert refused.status_code == 403
    assert "an admin can share it" in refused.json()["detail"]
    assert project_of(alice)["uuid"] == mine["uuid"]

    shared = gql(
        setup,
        'mutation($u: String!) { shareProject(uuid: $u, username: "alice") }',
        {"u": owned["uuid"]},
        headers=as_token(tokens["root"]),
    )
    assert shared["data"] == {"shareProject": owned["uuid"]}
    switched = alice.post(f"/api/project-switch?uuid={owned['uuid']}")
    assert switched.status_code == 200
    assert project_of(alice)["uuid"] == owned["uuid"]

    # Another browser of the same user: the same user's projects.
    elsewhere = browser(app, tokens["alice"])
    assert project_of(elsewhere)["name"].startswith(f"user-{alice_id}/")
    listed = gql(elsewhere, "{ projects { uuid } }")["data"]["projects"]
    assert owned["uuid"] in [p["uuid"] for p in listed]


def test_a_browser_session_does_not_carry_over_to_another_account(app: Any) -> None:
    setup = TestClient(app)
    first, second = add_user(setup, "first", "admin"), add_user(setup, "second")
    client = browser(app, first)
    assert (
        client.post(
            "/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")}
        ).status_code
        == 201
    )
    before = project_of(client)
    client.headers.update(as_token(second))  # same cookie jar, another account
    after = project_of(client)
    assert after["uuid"] != before["uuid"]
    body = gql(client, "query($u: String!) { project(uuid: $u) { id } }", {"u": before["uuid"]})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_without_users_label_studios_behaviour_is_kept(app: Any) -> None:
    one, two = TestClient(app), TestClient(app)
    assert (
        one.post(
            "/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")}
        ).status_code
        == 201
    )
    uuid = project_of(one)["uuid"]
    assert two.post(f"/api/project-switch?uuid={uuid}").status_code == 200


def test_an_unshared_project_is_out_of_reach_even_as_the_current_one(app: Any) -> None:
    setup = TestClient(app)
    tokens = {"root": add_user(setup, "root", "admin"), "alice": add_user(setup, "alice")}
    owner = browser(app, tokens["root"])
    config = {"label_config": fixture_text("configs/sentiment.xml")}
    assert owner.post("/api/project/config", data=config).status_code == 201
    owned = project_of(owner)
    share = 'mutation($u: String!) { %s(uuid: $u, username: "alice") }'
    root = as_token(tokens["root"])
    gql(setup, share % "shareProject", {"u": owned["uuid"]}, headers=root)
    alice = browser(app, tokens["alice"])
    assert alice.post(f"/api/project-switch?uuid={owned['uuid']}").status_code == 200
    assert project_of(alice)["uuid"] == owned["uuid"]

    taken = gql(setup, share % "unshareProject", {"u": owned["uuid"]}, headers=root)
    assert taken["data"] == {"unshareProject": owned["uuid"]}
    current = project_of(alice)  # her session's current project was the shared one
    assert current["uuid"] != owned["uuid"]
    assert current["name"].startswith("user-")
    assert owned["uuid"] not in [
        p["uuid"] for p in gql(alice, "{ projects { uuid } }")["data"]["projects"]
    ]
    assert alice.post(f"/api/project-switch?uuid={owned['uuid']}").status_code == 403
    again = gql(setup, share % "unshareProject", {"u": owned["uuid"]}, headers=root)
    assert again["data"] == {"unshareProject": owned["uuid"]}  # idempotent
