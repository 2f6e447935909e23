"""A disabled user's open subscriptions end at once (UNAUTHENTICATED), on a real server, for
both WebSocket protocols; other users' subscriptions go on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import running_server
from tests.ws_client import PROTOCOLS, GraphQLSocket

pytestmark = pytest.mark.live
PROJECT = "subscription { projectChanged { reason } }"
PASSWORD = "correct horse battery"


def gql(http: httpx.Client, query: str, token: str | None = None, **variables: Any) -> Any:
    headers = {"Authorization": f"Token {token}"} if token else {}
    answer = http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


def token_of(base: str, name: str) -> str:
    """Sign ``name`` in (a fresh cookie jar) and make an API token of theirs."""
    with httpx.Client(base_url=base, timeout=10) as own:
        login = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { id } }"
        gql(own, login, u=name, p=PASSWORD)
        return str(gql(own, "mutation { createToken { token } }")["createToken"]["token"])


def first_error(message: dict[str, Any]) -> dict[str, Any]:
    """The first GraphQL error of a message that ends a subscription (either protocol)."""
    errors = message["payload"]
    if message["type"] in ("next", "data"):
        errors = errors["errors"]
    elif isinstance(errors, dict):  # graphql-ws: one error object
        errors = [errors]
    first: dict[str, Any] = errors[0]
    return first


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_disabled_users_subscriptions_end_and_others_go_on(tmp_path: Path, protocol: str) -> None:
    create = (
        "mutation($u: String!, $p: String!, $r: String!) "
        "{ createUser(username: $u, password: $p, role: $r) { id } }"
    )
    with running_server(tmp_path / "p") as base, httpx.Client(base_url=base, timeout=10) as http:
        gql(http, create, u="root", p=PASSWORD, r="admin")  # the first user: still open
        root = token_of(base, "root")
        gql(http, create, root, u="alice", p=PASSWORD, r="annotator")
        gql(http, create, root, u="bob", p=PASSWORD, r="annotator")
        alice, bob = token_of(base, "alice"), token_of(base, "bob")

        def poke() -> httpx.Response:
            return http.patch(
                "/api/project", json={"title": "poke"}, headers={"Authorization": f"Token {root}"}
            )

        with (
            GraphQLSocket(
                base, protocol, additional_headers={"Authorization": f"Token {alice}"}
            ) as alice_ws,
            GraphQLSocket(
                base, protocol, additional_headers={"Authorization": f"Token {bob}"}
            ) as bob_ws,
        ):
            alice_ws.subscribe_confirmed("a", PROJECT, poke)
            bob_ws.subscribe_confirmed("b", PROJECT, poke)
            alice_ws.drain(0.5)  # the results of bob's pokes
            switch = 'mutation { setUserEnabled(username: "alice", enabled: false) { enabled } }'
            assert gql(http, switch, root) == {"setUserEnabled": {"enabled": False}}
            error = first_error(alice_ws.message_for("a"))
            assert error["extensions"]["code"] == "UNAUTHENTICATED", error
            assert "disabled" in error["message"]
            poke()
            assert bob_ws.data_for("b") == {"projectChanged": {"reason": "settings"}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_signing_out_ends_the_subscriptions_opened_with_the_login_cookie(
    tmp_path: Path, protocol: str
) -> None:
    """Logging out ends every login cookie of the user, so a WebSocket opened with one ends too
    (UNAUTHENTICATED); the same user's subscription opened with an API token goes on."""
    create = (
        "mutation($u: String!, $p: String!) "
        '{ createUser(username: $u, password: $p, role: "admin") { id } }'
    )
    login = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { id } }"
    with running_server(tmp_path / "p") as base, httpx.Client(base_url=base, timeout=10) as http:
        gql(http, create, u="root", p=PASSWORD)
        root = token_of(base, "root")
        with httpx.Client(base_url=base, timeout=10) as browser:
            gql(browser, login, u="root", p=PASSWORD)
            cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())

            def poke() -> httpx.Response:
                return http.patch(
                    "/api/project",
                    json={"title": "poke"},
                    headers={"Authorization": f"Token {root}"},
                )

            with (
                GraphQLSocket(
                    base, protocol, additional_headers={"Cookie": cookie, "Origin": base}
                ) as cookie_ws,
                GraphQLSocket(
                    base, protocol, additional_headers={"Authorization": f"Token {root}"}
                ) as token_ws,
            ):
                cookie_ws.subscribe_confirmed("c", PROJECT, poke)
                token_ws.subscribe_confirmed("t", PROJECT, poke)
                cookie_ws.drain(0.5)
                token_ws.drain(0.5)
                assert gql(browser, "mutation { logout }") == {"logout": True}
                error = first_error(cookie_ws.message_for("c"))
                assert error["extensions"]["code"] == "UNAUTHENTICATED", error
                assert "signed out" in error["message"]
                poke()
                assert token_ws.data_for("t") == {"projectChanged": {"reason": "settings"}}
