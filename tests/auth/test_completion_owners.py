"""Completions record who made them; annotators change only their own."""

from __future__ import annotations

import io
import json
import zipfile

from starlette.testclient import TestClient

from tests.auth.support import add_user, as_token, gql
from tests.conftest import fixture_text

RESULT = [
    {
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": ["Positive"]},
    }
]


def setup_project(client: TestClient) -> tuple[dict[str, str], int]:
    """Admin, alice and bob tokens, and a task (made by the admin)."""
    tokens = {
        "admin": add_user(client, "root", "admin"),
        "alice": add_user(client, "alice"),
        "bob": add_user(client, "bob"),
    }
    admin = as_token(tokens["admin"])
    config = {"label_config": fixture_text("configs/sentiment.xml")}
    assert client.post("/api/project/config", data=config, headers=admin).status_code == 201
    imported = client.post("/api/project/import", json=[{"text": "hi"}], headers=admin)
    return tokens, imported.json()["new_task_ids"][0]


def user_id(client: TestClient, token: str) -> int:
    return int(gql(client, "{ me { id } }", headers=as_token(token))["data"]["me"]["id"])


def test_a_completion_records_its_maker_in_rest_graphql_and_exports(client: TestClient) -> None:
    tokens, task_id = setup_project(client)
    alice = as_token(tokens["alice"])
    made = client.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT}, headers=alice)
    assert made.status_code == 201
    alice_id = user_id(client, tokens["alice"])
    task = client.get(f"/api/tasks/{task_id}", headers=alice).json()
    assert task["completions"][0]["completed_by"] == alice_id
    body = gql(
        client,
        "query($id: Int!) { task(id: $id) { completions { createdBy { username role } } } }",
        {"id": task_id},
        headers=alice,
    )
    assert body["data"]["task"]["completions"] == [
        {"createdBy": {"username": "alice", "role": "annotator"}}
    ]
    export = client.get("/api/project/export?format=JSON", headers=as_token(tokens["admin"]))
    assert export.status_code == 200
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        exported = json.loads(archive.read(archive.namelist()[0]))
    assert exported[0]["completions"][0]["completed_by"] == alice_id


def test_a_client_cannot_claim_another_maker(client: TestClient) -> None:
    tokens, task_id = setup_project(client)
    body = {"result": RESULT, "completed_by": 12345}
    client.post(f"/api/tasks/{task_id}/completions", json=body, headers=as_token(tokens["bob"]))
    task = client.get(f"/api/tasks/{task_id}", headers=as_token(tokens["bob"])).json()
    assert task["completions"][0]["completed_by"] == user_id(client, tokens["bob"])


def test_annotators_change_only_their_own_completions(client: TestClient) -> None:
    tokens, task_id = setup_project(client)
    alice, bob = as_token(tokens["alice"]), as_token(tokens["bob"])
    made = client.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT}, headers=alice)
    completion_id = made.json()["id"]
    url = f"/api/tasks/{task_id}/completions/{completion_id}"

    for method in ("PATCH", "POST"):
        answer = client.request(method, url, json={"lead_time": 1}, headers=bob)
        assert answer.status_code == 403, method
        assert answer.json() == {
            "status": 403,
            "detail": "You may change only your own completions",
        }
    assert client.delete(url, headers=bob).status_code == 403
    # Re-posting with the other's id (an update in disguise) is refused too.
    disguised = {"id": completion_id, "result": []}
    answer = client.post(f"/api/tasks/{task_id}/completions", json=disguised, headers=bob)
    assert answer.status_code == 403
    task = client.get(f"/api/tasks/{task_id}", headers=alice).json()
    assert task["completions"][0]["result"] == RESULT and "lead_time" not in task["completions"][0]

    graphql = gql(
        client,
        "mutation($id: Int!) { deleteCompletion(id: $id) }",
        {"id": completion_id},
        headers=bob,
    )
    assert graphql["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    assert client.patch(url, json={"lead_time": 2}, headers=alice).status_code == 201
    assert (
        client.get(f"/api/tasks/{task_id}", headers=alice).json()["completions"][0]["lead_time"]
        == 2
    )
    assert client.delete(url, headers=alice).status_code == 204


def test_admins_change_anyones_completions(client: TestClient) -> None:
    tokens, task_id = setup_project(client)
    made = client.post(
        f"/api/tasks/{task_id}/completions",
        json={"result": RESULT},
        headers=as_token(tokens["alice"]),
    )
    url = f"/api/tasks/{task_id}/completions/{made.json()['id']}"
    assert client.delete(url, headers=as_token(tokens["admin"])).status_code == 204


def test_without_users_the_completion_json_is_label_studios(client: TestClient) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    task_id = client.post("/api/project/import", json=[{"text": "hi"}]).json()["new_task_ids"][0]
    client.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})
    completion = client.get(f"/api/tasks/{task_id}").json()["completions"][0]
    assert set(completion) == {"id", "created_at", "result"}
