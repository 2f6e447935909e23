"""Redis storages against a real redis-server: source sync of JSON tasks, target writes of
completions, errors, masked passwords."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from tests.choices import choice_result
from tests.conftest import fixture_text
from tests.storage_fixtures import RedisPlace

RESULT = choice_result("Negative")


def configure(client: TestClient, role: str, type_name: str, body: dict[str, Any]) -> Any:
    return client.post(
        f"/api/project/storage-settings?storage_for={role}&type={type_name}",
        json={"type": type_name, **body},
    )


def idle(client: TestClient) -> None:
    assert client.app.state.storage.wait_idle(30)  # type: ignore[attr-defined]


def test_source_sync_of_redis_tasks(client: TestClient, redis_store: RedisPlace) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    tasks_db = redis_store.client(1)  # the source's default database
    tasks_db.set(f"{redis_store.prefix}/1", json.dumps({"text": "first"}))
    tasks_db.set(f"{redis_store.prefix}/2", json.dumps({"data": {"text": "second"}}))
    tasks_db.set(f"{redis_store.prefix}/10", json.dumps({"data": {"text": "tenth"}}))
    tasks_db.set(f"{redis_store.prefix}/3", json.dumps({"data": {"wrong": 1}}))
    redis_store.client(0).set(f"{redis_store.prefix}/4", json.dumps({"text": "other database"}))
    response = configure(client, "source", "redis", redis_store.settings())
    assert response.status_code == 201, response.text
    idle(client)
    texts = [t["data"]["text"] for t in client.get("/api/tasks").json()["tasks"]]
    assert texts == ["first", "second", "tenth"]  # keys in natural order
    query = "{ project { sourceStorage { type readablePath lastError params } } }"
    source = client.post("/graphql", json={"query": query}).json()["data"]["project"]
    storage = source["sourceStorage"]
    assert storage["type"] == "redis" and storage["readablePath"] == redis_store.prefix + "/"
    assert storage["lastError"].startswith(f"1 objects skipped: {redis_store.prefix}/3 :: ")
    assert storage["params"] == {"host": redis_store.host, "port": str(redis_store.port), "db": 1}

    tasks_db.set(f"{redis_store.prefix}/11", json.dumps({"text": "later"}))
    client.post("/graphql", json={"query": "mutation { syncStorage(role: SOURCE) { type } }"})
    idle(client)
    assert client.get("/api/project").json()["task_count"] == 4
    tasks_db.close()


def test_target_writes_completions_to_redis(client: TestClient, redis_store: RedisPlace) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    client.post("/api/project/import", json=[{"text": "a"}, {"text": "b"}])
    first, second = [t["id"] for t in client.get("/api/tasks").json()["tasks"]]
    response = configure(client, "target", "redis-completions", redis_store.settings())
    assert response.status_code == 201, response.text
    completion = client.post(f"/api/tasks/{second}/completions", json={"result": RESULT})
    assert completion.status_code == 201
    idle(client)
    completions_db = redis_store.client(2)  # the target's default database
    document = json.loads(completions_db.get(f"{redis_store.prefix}/{second}"))
    assert document["id"] == second and document["data"] == {"text": "b"}
    assert [c["id"] for c in document["completions"]] == [completion.json()["id"]]
    assert completions_db.get(f"{redis_store.prefix}/{first}") is None

    assert client.delete("/api/completions").status_code == 201
    idle(client)
    assert completions_db.get(f"{redis_store.prefix}/{second}") is None
    project = client.get("/api/project").json()
    assert project["target_storage"] == {"readable_path": redis_store.prefix + "/"}
    assert project["config"]["target"]["type"] == "redis-completions"
    completions_db.close()


def test_unreachable_redis_is_refused(client: TestClient, redis_store: RedisPlace) -> None:
    body = {**redis_store.settings(), "port": "1"}
    response = configure(client, "source", "redis", body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Error while storage update: Redis 127.0.0.1:1/1")
    response = configure(client, "source", "redis", {**redis_store.settings(), "port": "x"})
    assert response.status_code == 400
    assert response.json() == {"errors": {"port": ["Not a valid integer value"]}}


def test_passwords_are_masked_everywhere(client: TestClient, redis_store: RedisPlace) -> None:
    client.app.state.storage.close(1)  # type: ignore[attr-defined]  # nothing syncs
    redis_store.client(0).config_set("requirepass", "s3cr3t-password")
    try:
        wrong = configure(
            client, "target", "redis-completions", redis_store.settings(password="nope")
        )
        assert wrong.status_code == 400
        assert wrong.json()["detail"].startswith("Error while storage update: Redis ")
        assert "nope" not in wrong.json()["detail"]
        body = redis_store.settings(password="s3cr3t-password")
        assert configure(client, "target", "redis-completions", body).status_code == 201
        for path in ("/api/project", "/api/project/storage-settings"):
            assert "s3cr3t-password" not in client.get(path).text
        fields = client.get("/api/project/storage-settings").json()["target"]["redis-completions"]
        password = next(f for f in fields["fields"] if f["name"] == "password")
        assert password["data"] == "********"
        # Posting the form back with the mask keeps the stored password.
        body["password"] = "********"
        body["db"] = 3
        assert configure(client, "target", "redis-completions", body).status_code == 201
    finally:
        authed = redis_store.client(0)
        authed.connection_pool.connection_kwargs["password"] = "s3cr3t-password"
        authed.config_set("requirepass", "")
