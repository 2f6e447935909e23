"""Users and tokens made for the auth tests, and requests made as them."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from server import db
from server.services.auth import tokens, users

PASSWORD = "correct horse battery"


def add_user(client: TestClient, name: str, role: str = "annotator") -> str:
    """Create a user and return a fresh API token of theirs; the app learns at once that
    users exist."""
    user = db.with_connection(users.add_user, name, PASSWORD, role)
    token = db.with_connection(tokens.create_token, user.id).token
    client.app.state.auth.refresh()  # type: ignore[attr-defined]
    return token


def as_token(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def gql(
    client: TestClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    answer = client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def error_code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])
