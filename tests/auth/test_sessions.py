"""Browser sessions: the login page, the signed HttpOnly SameSite=Lax cookie (Secure over
HTTPS, X-Forwarded-Proto only with --proxy-headers), logout, and CSRF protection of
cookie-authenticated writes."""

from __future__ import annotations

import dataclasses
import re

import httpx2
from starlette.testclient import TestClient

from server.app import create_app
from server.login_cookie import COOKIE
from server.settings import Settings
from tests.auth.support import PASSWORD, add_user, gql

CSRF = {"X-CSRF-Protection": "1"}


def login_form(client: TestClient, password: str = PASSWORD, **headers: str) -> httpx2.Response:
    return client.post(
        "/login",
        data={"username": "alice", "password": password, "next": "/api/project"},
        headers=headers,
        follow_redirects=False,
    )


def test_the_login_page_is_self_contained(client: TestClient) -> None:
    add_user(client, "alice")
    page = client.get("/login?next=/graphql")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<form method="post" action="/login">' in page.text
    assert 'value="/graphql"' in page.text
    assert not re.search(r"(src|href)=", page.text)  # no external (or any) assets
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"


def test_the_form_signs_in_with_a_signed_httponly_lax_cookie(client: TestClient) -> None:
    add_user(client, "alice")
    answer = login_form(client)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/api/project"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http
    assert PASSWORD not in cookie
    assert client.get("/api/project").status_code == 200  # the client keeps the cookie
    me = gql(client, "{ me { username } }")["data"]["me"]
    assert me == {"username": "alice"}


def test_a_wrong_password_shows_the_form_again(client: TestClient) -> None:
    add_user(client, "alice")
    answer = login_form(client, "wrong password")
    assert answer.status_code == 401
    assert "Wrong user name or password" in answer.text
    assert "set-cookie" not in answer.headers
    assert client.get("/api/project").status_code == 401


def test_next_never_leaves_the_server(client: TestClient) -> None:
    add_user(client, "alice")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x"):
        answer = client.post(
            "/login",
            data={"username": "alice", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/", target


def test_secure_over_https_and_forwarded_proto_only_with_proxy_headers(
    settings: Settings,
) -> None:
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        add_user(client, "alice")
        assert "Secure" in login_form(client).headers["set-cookie"]
    with TestClient(create_app(settings)) as client:
        forwarded = login_form(client, **{"X-Forwarded-Proto": "https"})
        assert "Secure" not in forwarded.headers["set-cookie"]
    trusting = dataclasses.replace(settings, proxy_headers=True)
    with TestClient(create_app(trusting)) as client:
        forwarded = login_form(client, **{"X-Forwarded-Proto": "https"})
        assert "Secure" in forwarded.headers["set-cookie"]


def test_forgeable_cookie_writes_need_the_csrf_header(client: TestClient) -> None:
    """A foreign page can send form, multipart and text POSTs without a preflight: with the
    cookie they need the header. JSON POSTs, PATCH and DELETE always need a preflight."""
    add_user(client, "alice", "admin")
    login_form(client)
    files = {"file": ("tasks.json", b'[{"text": "x"}]', "application/json")}
    refused = client.post("/api/project/import", files=files)
    assert refused.status_code == 403
    assert refused.json()["status"] == 403 and "X-CSRF-Protection" in refused.json()["detail"]
    refused = client.post("/api/project/config", data={"label_config": "<View/>"})
    assert refused.status_code == 403
    assert client.get("/api/tasks").json()["total"] == 0  # nothing was imported
    allowed = client.post("/api/project/import", files=files, headers=CSRF)
    assert allowed.status_code == 201
    assert client.delete("/api/tasks").status_code == 204  # DELETE: preflighted anyway
    text = client.post(
        "/graphql",
        content='{"query": "mutation { deleteAllTasks }"}',
        headers={"Content-Type": "text/plain"},
    )
    assert text.status_code == 403
    assert text.json()["errors"][0]["extensions"]["code"] == "CSRF"
    mutation = {"query": 'mutation { updateProject(input: {title: "t"}) { title } }'}
    allowed = client.post("/graphql", json=mutation)  # JSON: preflighted
    assert allowed.json()["data"]["updateProject"]["title"] == "t"


def test_graphql_login_and_logout(client: TestClient) -> None:
    add_user(client, "alice")
    answer = client.post(
        "/graphql",
        json={
            "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) "
            "{ username } }",
            "variables": {"u": "alice", "p": PASSWORD},
        },
    )
    assert answer.json()["data"]["login"] == {"username": "alice"}
    assert "HttpOnly" in answer.headers["set-cookie"]
    stolen = client.cookies.get(COOKIE)
    assert client.get("/api/project").status_code == 200
    out = client.post("/graphql", json={"query": "mutation { logout }"})
    assert out.json()["data"] == {"logout": True}
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert client.get("/api/project").status_code == 401
    # The old cookie no longer works anywhere (logout ends every session of the user).
    client.cookies.set(COOKIE, stolen or "")
    assert client.get("/api/project").status_code == 401


def test_a_tampered_cookie_is_nobody(client: TestClient) -> None:
    add_user(client, "alice")
    login_form(client)
    value = client.cookies.get(COOKIE) or ""
    client.cookies.set(COOKIE, value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1])
    assert client.get("/api/project").status_code == 401


def test_logout_form(client: TestClient) -> None:
    add_user(client, "alice")
    login_form(client)
    answer = client.post("/logout", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert client.get("/api/project").status_code == 401
