"""start-multi-session mode (rest-api.md §3.1, §7.5): a project per browser session, new
projects, project-switch, sharing by uuid, per-project directories."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from rest_compat._http import ENDPOINTS
from server import db
from server.app import create_app
from server.models import Project
from server.multi_session import KEY_FILE
from server.settings import Settings
from tests.conftest import FIXTURES, fixture_json, fixture_text

UNKNOWN = "0b6f0f8e-6a44-4a51-9a9a-8d1f0c1b2a3c"


@pytest.fixture
def app(multi_settings: Settings) -> Iterator[Any]:
    application = create_app(multi_settings)
    with TestClient(application):  # runs the lifespan once for every client below
        yield application


@pytest.fixture
def alice(app: Any) -> TestClient:
    return TestClient(app)


@pytest.fixture
def bob(app: Any) -> TestClient:
    return TestClient(app)


def gql(client: TestClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = client.post("/graphql", json={"query": query, "variables": variables or {}}).json()
    assert "errors" not in body, body
    return body["data"]


def gql_error(client: TestClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The only error's extensions (asserts the operation failed with one error, no data)."""
    body = client.post("/graphql", json={"query": query, "variables": variables}).json()
    (error,) = body["errors"]
    assert body["data"] is None, body
    return dict(error["extensions"])


def project_count() -> int:
    return int(db.with_connection(lambda: Project.select().count()))


def test_each_session_gets_its_own_project(alice: TestClient, bob: TestClient) -> None:
    first = alice.get("/api/project")
    assert first.status_code == 200
    body = first.json()
    assert body["multi_session_mode"] is True
    user, project_uuid = body["project_name"].split("/")
    assert len(user) == 36 and len(project_uuid) == 36
    assert "session" in alice.cookies
    assert alice.get("/api/project").json()["project_name"] == body["project_name"]
    other = bob.get("/api/project").json()["project_name"]
    assert other.split("/")[0] != user and other != body["project_name"]
    assert gql(alice, "{ project { uuid name } }")["project"] == {
        "uuid": project_uuid,
        "name": body["project_name"],
    }


def test_requests_without_a_project_create_none(alice: TestClient) -> None:
    before = project_count()
    response = alice.get("/api/health")
    assert response.json() == {"status": "up"}
    assert "set-cookie" not in response.headers
    assert project_count() == before


def test_session_key_is_generated_once_and_private(multi_settings: Settings, app: Any) -> None:
    key_file = Path(multi_settings.root_dir) / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    assert len(key.strip()) >= 32
    create_app(multi_settings)
    assert key_file.read_text() == key


def test_a_forged_cookie_starts_a_new_session(alice: TestClient) -> None:
    name = alice.get("/api/project").json()["project_name"]
    alice.cookies.clear()
    alice.cookies.set("session", "eyJ1c2VyIjogIngifQ==.forged.signature")
    assert alice.get("/api/project").json()["project_name"] != name


def stored_project_name(client: TestClient) -> str:
    """The session's current project, stored by a write (a read alone stores nothing)."""
    response = client.patch("/api/project", json={})
    assert response.status_code == 201, response.text
    return str(response.json()["project_name"])


def test_new_project_is_created_and_selected(alice: TestClient) -> None:
    first = stored_project_name(alice)
    response = alice.post("/api/project?new=1&desc=Second%20project")
    assert response.status_code == 201
    created = response.json()
    assert created["config"]["description"] == "Second project"
    assert created["project_name"] != first
    assert created["project_name"].split("/")[0] == first.split("/")[0]  # same user
    assert alice.get("/api/project").json()["project_name"] == created["project_name"]
    names = [p["name"] for p in gql(alice, "{ projects { name } }")["projects"]]
    assert names == [first, created["project_name"]]
    assert alice.post("/api/project").json()["project_name"] == created["project_name"]


def test_project_switch(alice: TestClient) -> None:
    first = stored_project_name(alice)
    second = alice.post("/api/project?new=1").json()["project_name"]
    first_uuid = first.split("/")[1]

    response = alice.post("/api/project-switch")
    assert response.status_code == 400
    assert response.json() == {"status": 400, "detail": "Not a valid UUID"}
    assert alice.post("/api/project-switch?uuid=not-a-uuid").status_code == 400

    response = alice.post(f"/api/project-switch?uuid={UNKNOWN}")
    assert response.status_code == 404
    assert UNKNOWN in response.json()["detail"]
    assert alice.get("/api/project").json()["project_name"] == second  # unchanged

    response = alice.post(f"/api/project-switch?uuid={first_uuid}")
    assert response.status_code == 200
    assert response.json()["project_name"] == first  # the new current project
    assert alice.get("/api/project").json()["project_name"] == first

    response = alice.get(f"/api/project-switch?uuid={second.split('/')[1]}", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/api/project"
    assert response.headers["x-labelgraph-operation"] == "RestProjectSwitch"
    assert alice.get("/api/project").json()["project_name"] == second
    # Following the redirect lands on a page that exists: the switched-to project.
    response = alice.get(f"/api/project-switch?uuid={first_uuid}")
    assert response.status_code == 200
    assert response.url.path == "/api/project"
    assert response.json()["project_name"] == first


def test_projects_are_shared_by_uuid(alice: TestClient, bob: TestClient) -> None:
    alice.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    alice.post("/api/project/import", json=fixture_json("tasks/sentiment_mixed.json"))
    name = alice.get("/api/project").json()["project_name"]
    bob_own = stored_project_name(bob)

    response = bob.post(f"/api/project-switch?uuid={name.split('/')[1]}")
    assert response.status_code == 200 and response.json()["task_count"] == 5
    assert bob.get("/api/tasks").json()["total"] == 5
    assert bob.post("/api/project/import", json=[{"text": "from bob"}]).status_code == 201
    assert alice.get("/api/project").json()["task_count"] == 6
    shared = sorted(p["name"] for p in gql(bob, "{ projects { name } }")["projects"])
    assert shared == sorted([name, bob_own])
    assert [p["name"] for p in gql(alice, "{ projects { name } }")["projects"]] == [name]


def test_rest_reaches_only_the_current_projects_tasks(alice: TestClient, bob: TestClient) -> None:
    alice.post("/api/project/import", json=[{"text": "a"}, {"text": "b"}])
    task_id = alice.get("/api/tasks").json()["tasks"][0]["id"]
    assert alice.get(f"/api/tasks/{task_id}").status_code == 200
    assert bob.get(f"/api/tasks/{task_id}").status_code == 404
    assert bob.post(f"/api/tasks/{task_id}/completions", json={"result": []}).status_code == 404
    assert bob.delete(f"/api/tasks/{task_id}").status_code == 404
    assert bob.get("/api/tasks").json()["total"] == 0
    # GraphQL too, until the project is shared with bob's session by its uuid.
    query = "query($id: Int!) { task(id: $id) { data } }"
    assert gql_error(bob, query, {"id": task_id})["code"] == "NOT_FOUND"
    project_uuid = alice.get("/api/project").json()["project_name"].split("/")[1]
    assert bob.post(f"/api/project-switch?uuid={project_uuid}").status_code == 200
    assert gql(bob, query, {"id": task_id})["task"]["data"] == {"text": "a"}


def test_uploads_live_in_each_projects_directory(
    multi_settings: Settings, alice: TestClient, bob: TestClient
) -> None:
    content = (FIXTURES / "imports" / "red.png").read_bytes()
    report = alice.post("/api/project/import", files=[("file", ("red.png", content))])
    assert report.status_code == 201, report.text
    url = alice.get("/api/tasks").json()["tasks"][0]["data"]["image"]
    assert url.startswith("/data/upload/")
    name = alice.get("/api/project").json()["project_name"]
    stored = Path(multi_settings.root_dir) / name / "upload" / url.rsplit("/", 1)[1]
    assert stored.read_bytes() == content
    assert alice.get(url).content == content
    assert bob.get(url).status_code == 404
    before = project_count()
    stranger = TestClient(alice.app)
    assert stranger.get(url).status_code == 404  # and no project made for it
    assert project_count() == before


def test_exports_come_from_the_current_project(alice: TestClient, bob: TestClient) -> None:
    alice.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    alice.post("/api/project/import", json=fixture_json("tasks/sentiment_mixed.json"))
    response = alice.get("/api/project/export?format=JSON")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    data = gql(alice, 'mutation { exportProject(format: "JSON") { url } }')
    url = data["exportProject"]["url"]
    assert alice.get(url).status_code == 200
    assert bob.get(url).status_code == 404


def test_graphql_reaches_other_projects_once_shared(alice: TestClient, bob: TestClient) -> None:
    stored_project_name(alice)
    mine = gql(alice, "{ project { id uuid name } }")["project"]
    by_id = "query($id: Int!) { project(id: $id) { uuid } }"
    by_uuid = "query($u: String!) { project(uuid: $u) { id } }"
    unknown = gql_error(bob, by_id, {"id": 10_000})
    assert gql_error(bob, by_id, {"id": mine["id"]}) == {**unknown, "id": mine["id"]}
    assert gql_error(bob, by_uuid, {"u": mine["uuid"]})["code"] == "NOT_FOUND"
    selected = gql(
        bob, "mutation($u: String!) { selectProject(uuid: $u) { name } }", {"u": mine["uuid"]}
    )
    assert selected["selectProject"]["name"] == mine["name"]
    assert gql(bob, by_id, {"id": mine["id"]})["project"]["uuid"] == mine["uuid"]
    assert gql(bob, by_uuid, {"u": mine["uuid"]})["project"]["id"] == mine["id"]
    assert bob.get("/api/project").json()["project_name"] == mine["name"]
    created = gql(bob, 'mutation { createProject(description: "via GraphQL") { description } }')
    assert created["createProject"]["description"] == "via GraphQL"


def test_ml_backend_names_use_the_project_uuid(alice: TestClient, ml_backend: Any) -> None:
    name = alice.get("/api/project").json()["project_name"]
    assert alice.patch("/api/project", json={"ml_backend": ml_backend.url}).status_code == 201
    (backend,) = alice.get("/api/models").json()["models"]
    assert backend.startswith(name.split("/")[1]) and "/" not in backend


def test_single_project_mode_switches_only_to_itself(client: TestClient) -> None:
    uuid = client.post("/graphql", json={"query": "{ project { uuid } }"}).json()["data"]
    current = uuid["project"]["uuid"]
    response = client.post(f"/api/project-switch?uuid={current}")
    assert response.status_code == 200 and response.json()["multi_session_mode"] is False
    assert client.post(f"/api/project-switch?uuid={UNKNOWN}").status_code == 404
    response = client.post("/api/project?new=1")
    assert response.status_code == 400 and "start-multi-session" in response.json()["detail"]
    assert "set-cookie" not in client.get("/api/project").headers


def read_routes() -> list[str]:
    """Every GET route that runs a query (path parameters set to 1)."""
    return sorted(
        re.sub(r"\{\w+\}", "1", ep.path)
        for ep in ENDPOINTS
        if ep.method == "GET" and ep.operation.document.lstrip().startswith("query")
    )


def read_answers(client: TestClient) -> dict[str, tuple[int, Any]]:
    answers = {}
    for path in read_routes():
        response = client.get(path)
        assert response.status_code < 500, (path, response.text)
        is_json = response.headers.get("content-type", "").startswith("application/json")
        answers[path] = (response.status_code, response.json() if is_json else response.text)
    body = {"query": "{ project { id uuid name taskCount } projects { uuid } }"}
    answers["/graphql"] = (200, client.post("/graphql", json=body).json())
    return answers


def test_reads_store_no_project_and_the_first_write_stores_one(
    multi_settings: Settings, app: Any
) -> None:
    root = Path(multi_settings.root_dir)
    entries = sorted(p.name for p in root.iterdir())
    before = project_count()
    for _ in range(10):  # cookieless clients: every request a new session
        read_answers(TestClient(app))
    assert project_count() == before
    assert sorted(p.name for p in root.iterdir()) == entries

    client = TestClient(app)
    unsaved = read_answers(client)
    assert unsaved["/api/tasks"] == (
        200,
        {"tasks": [], "total": 0, "total_completions": 0, "total_predictions": 0},
    )
    name = unsaved["/api/project"][1]["project_name"]
    assert read_answers(client) == unsaved and project_count() == before  # the same project

    assert client.patch("/api/project", json={}).status_code == 201  # the first write
    assert project_count() == before + 1
    assert (root / name).is_dir()
    assert sorted(p.name for p in root.iterdir()) == sorted([*entries, name.split("/")[0]])
    stored = read_answers(client)
    project_id = stored["/graphql"][1]["data"]["project"]["id"]
    assert project_id > 0 and unsaved["/graphql"][1]["data"]["project"]["id"] == 0
    for answers in (stored, unsaved):  # ids aside, reads answered as for the stored project
        answers["/graphql"][1]["data"]["project"]["id"] = None
    assert stored == unsaved
    assert client.post("/api/project/import", json=[{"text": "a"}]).status_code == 201
    assert project_count() == before + 1
