"""Users and API tokens: once a user exists anonymous callers are refused; tokens work on REST
and GraphQL with both header forms; tokens are random, hashed, revocable, can expire."""

from __future__ import annotations

import hashlib
import time

import pytest
from starlette.testclient import TestClient

from server import db
from server.auth_models import ApiToken, User
from server.services.auth import tokens
from tests.auth.support import PASSWORD, add_user, as_token, error_code, gql
from tests.query_log import count_queries


def test_without_users_nothing_changes(client: TestClient) -> None:
    assert client.get("/api/project").status_code == 200
    assert gql(client, "{ me { id } }")["data"] == {"me": None}
    # Clients that send a token anyway (Label Studio 1.x SDKs) are served as before.
    with count_queries() as counter:
        answer = client.get("/api/health", headers=as_token("lg_from-another-server"))
    assert answer.status_code == 200 and counter.count == 0
    assert client.get("/api/project", headers=as_token("anything")).status_code == 200


def test_once_a_user_exists_anonymous_requests_are_refused(client: TestClient) -> None:
    add_user(client, "alice", "admin")
    answer = client.get("/api/project")
    assert answer.status_code == 401
    assert answer.json() == {
        "status": 401,
        "detail": "Authentication required: send an API token (Authorization: Token …) or log in",
    }
    body = gql(client, "{ project { id } }")
    assert error_code(body) == "UNAUTHENTICATED"
    assert body["data"] is None
    assert client.get("/api/health").json() == {"status": "up"}
    assert gql(client, "{ health }")["data"] == {"health": "up"}


def test_token_and_bearer_headers_work_on_rest_and_graphql(client: TestClient) -> None:
    token = add_user(client, "alice", "admin")
    for header in (f"Token {token}", f"Bearer {token}", f"token  {token}"):
        answer = client.get("/api/project", headers={"Authorization": header})
        assert answer.status_code == 200, header
        assert answer.json()["project_name"]
        body = gql(client, "{ me { username role } }", headers={"Authorization": header})
        assert body["data"]["me"] == {"username": "alice", "role": "admin"}


def test_a_wrong_token_is_refused_everywhere(client: TestClient) -> None:
    add_user(client, "alice")
    for path in ("/api/project", "/graphql", "/api/tasks"):
        answer = client.get(path, headers=as_token("lg_not-a-real-token"))
        assert answer.status_code == 401, path
    answer = client.post("/graphql", json={"query": "{ health }"}, headers=as_token("nope"))
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_tokens_are_stored_only_as_sha256_hashes(client: TestClient) -> None:
    token = add_user(client, "alice")
    rows = db.with_connection(lambda: list(ApiToken.select()))
    assert [row.token_hash for row in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert all(token not in str(row.__data__.values()) for row in rows)
    user = db.with_connection(lambda: User.get())
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_tokens_are_random_and_long(client: TestClient) -> None:
    add_user(client, "alice")
    user = db.with_connection(lambda: User.get())
    made = {db.with_connection(tokens.create_token, user.id).token for _ in range(20)}
    assert len(made) == 20
    assert all(len(token) >= 40 and token.startswith("lg_") for token in made)


def test_an_expired_token_is_refused(client: TestClient) -> None:
    token = add_user(client, "alice")
    db.with_connection(lambda: ApiToken.update(expires_at=int(time.time()) - 1).execute())
    assert client.get("/api/project", headers=as_token(token)).status_code == 401


def test_a_user_creates_lists_and_revokes_their_own_tokens(client: TestClient) -> None:
    first = add_user(client, "alice")
    created = gql(
        client,
        'mutation { createToken(name: "laptop", expiresDays: 30) '
        "{ token apiToken { id name prefix expiresAt } } }",
        headers=as_token(first),
    )["data"]["createToken"]
    second = created["token"]
    assert second.startswith(created["apiToken"]["prefix"])
    assert created["apiToken"]["name"] == "laptop" and created["apiToken"]["expiresAt"]
    assert client.get("/api/project", headers=as_token(second)).status_code == 200
    listed = gql(client, "{ myTokens { id name } }", headers=as_token(first))["data"]
    assert [t["name"] for t in listed["myTokens"]] == ["", "laptop"]
    assert second not in str(listed)
    revoked = gql(
        client,
        "mutation($id: Int!) { revokeToken(id: $id) }",
        {"id": created["apiToken"]["id"]},
        headers=as_token(first),
    )
    assert revoked["data"] == {"revokeToken": created["apiToken"]["id"]}
    assert client.get("/api/project", headers=as_token(second)).status_code == 401


def test_an_annotator_cannot_revoke_another_users_token(client: TestClient) -> None:
    alice = add_user(client, "alice")
    bob = add_user(client, "bob")
    alice_token_id = gql(client, "{ myTokens { id } }", headers=as_token(alice))["data"]
    token_id = alice_token_id["myTokens"][0]["id"]
    body = gql(
        client,
        "mutation($id: Int!) { revokeToken(id: $id) }",
        {"id": token_id},
        headers=as_token(bob),
    )
    assert error_code(body) == "NOT_FOUND"
    assert client.get("/api/project", headers=as_token(alice)).status_code == 200


def test_an_admin_creates_users_over_graphql(client: TestClient) -> None:
    admin = add_user(client, "root", "admin")
    body = gql(
        client,
        'mutation { createUser(username: "carol", password: "long enough pw") { username role } }',
        headers=as_token(admin),
    )
    assert body["data"]["createUser"] == {"username": "carol", "role": "annotator"}
    users = gql(client, "{ users { username } }", headers=as_token(admin))["data"]["users"]
    assert [u["username"] for u in users] == ["root", "carol"]


def test_the_watcher_notices_users_added_by_another_process(client: TestClient) -> None:
    """`labelgraph user add` runs in another process: the flag is refreshed from the
    database (the watcher thread calls the same refresh every couple of seconds)."""
    from server.services.auth import users

    db.with_connection(users.add_user, "alice", PASSWORD, "admin")
    assert client.get("/api/project").status_code == 200  # not noticed yet
    assert client.app.state.auth.refresh() is True  # type: ignore[attr-defined]
    assert client.get("/api/project").status_code == 401


@pytest.mark.parametrize("bad", ["", "a b", "x" * 151, "ünï"])
def test_user_names_are_checked(client: TestClient, bad: str) -> None:
    from server.errors import DomainError
    from server.services.auth import users

    with pytest.raises(DomainError):
        db.with_connection(users.add_user, bad, PASSWORD)
