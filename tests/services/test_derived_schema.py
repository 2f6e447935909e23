"""The derived input/output schemas (labeling-config.md §7): the incrementally kept snapshot
always equals a from-scratch computation, whatever happens to tasks and completions."""

from __future__ import annotations

import random
from typing import Any

from starlette.testclient import TestClient

from server import db
from server.db import write_transaction
from server.models import Completion, DerivedSchema, Task
from server.services import projects
from server.services.config import derived_schema
from server.services.config.label_config import parse_uncached
from tests.peewee_typed import tuple_rows

CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text"><Choice value="a"/><Choice value="b"/></Choices>'
    "</View>"
)
KEYS = ["text", "meta", "other", "$undefined$"]


def snapshot(project_id: int) -> derived_schema.DataSchema:
    def run() -> derived_schema.DataSchema:
        with write_transaction():
            return derived_schema.current(projects.lock_project(project_id))

    return db.with_connection(run)


def reference(project_id: int) -> tuple[Any, set[Any], dict[Any, set[Any]]]:
    """§7 computed the obvious way, from every row."""

    def run() -> tuple[Any, set[Any], dict[Any, set[Any]]]:
        keys: set[str] | None = None
        for (data,) in tuple_rows(Task.select(Task.data).where(Task.project == project_id)):
            keys = set(data) if keys is None else keys & set(data)
        tuples: set[Any] = set()
        labels: dict[Any, set[Any]] = {}
        query = Completion.select(Completion.payload).where(Completion.project == project_id)
        for (payload,) in tuple_rows(query):
            for r in payload.get("result", []):
                if r.get("type") in derived_schema.IGNORED_RESULT_TYPES:
                    continue
                if r.get("from_name") is None or r.get("to_name") is None:
                    continue
                tuples.add((r["from_name"], r["to_name"], r.get("type")))
                found = list(derived_schema.flatten_labels(r.get("value", {}).get(r.get("type"))))
                if found:
                    labels.setdefault(r["from_name"], set()).update(found)
        return (None if keys is None else frozenset(keys)), tuples, labels

    return db.with_connection(run)


def random_result(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["choices", "labels", "taxonomy", "textarea", "rating", "relation", "bad"])
    name = rng.choice(["sentiment", "ner", "tax"])
    if kind == "relation":
        return {"from_id": "a", "to_id": "b", "type": "relation"}
    if kind == "bad":
        return {"to_name": "text", "type": "choices", "value": {"choices": ["x"]}}
    values = {
        "choices": {"choices": [rng.choice(["a", "b", "c"])]},
        "labels": {"start": 0, "end": 1, "labels": [rng.choice(["PER", "ORG", 7])]},
        "taxonomy": {"taxonomy": [["root", rng.choice(["x", "y"])]]},
        "textarea": {"text": ["free text"]},
        "rating": {"rating": 3},
    }
    return {"from_name": name, "to_name": "text", "type": kind, "value": values[kind]}


def check(project_id: int) -> None:
    schema = snapshot(project_id)
    keys, tuples, labels = reference(project_id)
    assert schema.input_keys == keys
    assert set(schema.output_tuples) == tuples
    assert {k: set(v) for k, v in schema.output_labels.items()} == labels


def test_snapshot_tracks_every_change(client: TestClient, project_id: int) -> None:
    rng = random.Random(7)
    assert client.post("/api/project/config", data={"label_config": CONFIG}).status_code == 201
    task_ids: list[int] = []
    completion_ids: dict[int, int] = {}  # completion -> task
    check(project_id)
    for step in range(60):
        op = rng.choice(
            ["import", "import", "complete", "complete", "update", "delete_c", "delete_t", "patch"]
        )
        if op == "import" or not task_ids:
            tasks = []
            for _ in range(rng.randint(1, 4)):
                data = {"text": "t", **{k: 1 for k in KEYS[1:] if rng.random() < 0.5}}
                item: dict[str, Any] = {"data": data}
                if rng.random() < 0.3:
                    item["completions"] = [{"result": [random_result(rng)]}]
                tasks.append(item)
            report = client.post("/api/project/import", json=tasks).json()
            task_ids += report["new_task_ids"]
        elif op == "complete":
            task = rng.choice(task_ids)
            body = {"result": [random_result(rng) for _ in range(rng.randint(0, 3))]}
            created = client.post(f"/api/tasks/{task}/completions", json=body).json()
            completion_ids[created["id"]] = task
        elif op == "update" and completion_ids:
            cid = rng.choice(list(completion_ids))
            body = {"result": [random_result(rng)]}
            path = f"/api/tasks/{completion_ids[cid]}/completions/{cid}"
            assert client.patch(path, json=body).status_code == 201
        elif op == "delete_c" and completion_ids:
            cid = rng.choice(list(completion_ids))
            client.delete(f"/api/tasks/{completion_ids.pop(cid)}/completions/{cid}")
        elif op == "delete_t":
            task = task_ids.pop(rng.randrange(len(task_ids)))
            client.delete(f"/api/tasks/{task}")
            completion_ids = {c: t for c, t in completion_ids.items() if t != task}
        elif op == "patch":
            task = rng.choice(task_ids)
            data = {"text": "p", **{k: 2 for k in KEYS[1:3] if rng.random() < 0.5}}
            client.patch(f"/api/tasks/{task}", json={"data": data})
        if step % 3 == 0:
            check(project_id)
    check(project_id)
    client.delete("/api/completions")
    check(project_id)
    client.delete("/api/tasks")
    check(project_id)
    assert snapshot(project_id).input_keys is None


def test_snapshot_is_rebuilt_when_rows_vanish_unannounced(
    client: TestClient, project_id: int
) -> None:
    client.post("/api/project/config", data={"label_config": CONFIG})
    client.post("/api/project/import", json=[{"text": "a"}, {"text": "b", "meta": 1}])
    assert snapshot(project_id).input_keys == frozenset({"text"})

    def delete_behind_its_back() -> None:
        with write_transaction():
            first = Task.select().where(Task.project == project_id).order_by(Task.id).first()
            Task.delete().where(Task.id == first.id).execute()
            from server.models import Project

            Project.update(task_count=Project.task_count - 1).where(
                Project.id == project_id
            ).execute()

    db.with_connection(delete_behind_its_back)
    assert snapshot(project_id).input_keys == frozenset({"text", "meta"})


def test_checks_use_the_snapshot_not_a_scan(client: TestClient, project_id: int) -> None:
    client.post("/api/project/config", data={"label_config": CONFIG})
    client.post("/api/project/import", json=[{"text": str(i)} for i in range(50)])
    snapshot(project_id)
    row = db.with_connection(lambda: DerivedSchema.get_by_id(project_id))
    assert (row.task_total, row.task_watermark) == (50, row.task_watermark)
    client.post("/api/project/import", json=[{"text": "more", "extra": 1}])
    assert snapshot(project_id).task_count == 51
    config = parse_uncached(CONFIG.replace("$text", "$extra"))
    (issue,) = derived_schema.input_issues(config, snapshot(project_id))
    assert issue.message == (
        'Please replace "extra" in value=$extra with one of the following columns:\n- text'
    )
