"""Disabling a user: no sign-in, token or login cookie of theirs works until an admin enables
them again; the last enabled admin stays; only admins switch users."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.auth.support import PASSWORD, add_user, as_token, error_code, gql

SWITCH = (
    "mutation($u: String!, $e: Boolean!) "
    "{ setUserEnabled(username: $u, enabled: $e) { username enabled } }"
)
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { username } }"


def switch(client: TestClient, admin: str, name: str, enabled: bool) -> dict[str, Any]:
    return gql(client, SWITCH, {"u": name, "e": enabled}, as_token(admin))


def test_a_disabled_user_is_refused_everywhere_until_enabled_again(client: TestClient) -> None:
    admin = add_user(client, "root", "admin")
    token = add_user(client, "alice")
    browser = TestClient(client.app)
    signed_in = gql(browser, LOGIN, {"u": "alice", "p": PASSWORD})
    assert signed_in["data"] == {"login": {"username": "alice"}}
    assert browser.get("/api/project").status_code == 200  # with the login cookie

    answer = switch(client, admin, "alice", False)
    assert answer["data"] == {"setUserEnabled": {"username": "alice", "enabled": False}}
    assert client.get("/api/project", headers=as_token(token)).status_code == 401
    assert (
        client.post(
            "/graphql", json={"query": "{ me { username } }"}, headers=as_token(token)
        ).status_code
        == 401
    )
    assert browser.get("/api/project").status_code == 401  # the cookie ended too
    refused = gql(TestClient(client.app), LOGIN, {"u": "alice", "p": PASSWORD})
    assert refused["data"] is None and error_code(refused) == "INVALID_CREDENTIALS"
    listed = gql(client, "{ users { username enabled } }", headers=as_token(admin))
    assert listed["data"]["users"] == [
        {"username": "root", "enabled": True},
        {"username": "alice", "enabled": False},
    ]
    assert switch(client, admin, "alice", False)["data"] is not None  # idempotent

    assert switch(client, admin, "alice", True)["data"]["setUserEnabled"]["enabled"] is True
    assert client.get("/api/project", headers=as_token(token)).status_code == 200
    assert browser.get("/api/project").status_code == 401  # old logins stay ended
    again = gql(browser, LOGIN, {"u": "alice", "p": PASSWORD})
    assert again["data"] == {"login": {"username": "alice"}}


def test_only_admins_switch_users_and_the_last_admin_stays(client: TestClient) -> None:
    admin = add_user(client, "root", "admin")
    annotator = add_user(client, "alice")
    denied = switch(client, annotator, "root", False)
    assert denied["data"] is None and error_code(denied) == "FORBIDDEN"
    last = switch(client, admin, "root", False)
    assert error_code(last) == "CONFLICT"
    assert "last enabled admin" in last["errors"][0]["message"]
    assert client.get("/api/project", headers=as_token(admin)).status_code == 200
    unknown = switch(client, admin, "nobody", False)
    assert error_code(unknown) == "NOT_FOUND"

    second = add_user(client, "second", "admin")
    assert switch(client, second, "root", False)["data"]["setUserEnabled"]["enabled"] is False
    assert client.get("/api/project", headers=as_token(admin)).status_code == 401
