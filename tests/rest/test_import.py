from starlette.testclient import TestClient

from tests.conftest import fixture_json, fixture_text


def set_config(client: TestClient, name: str) -> None:
    response = client.post("/api/project/config", data={"label_config": fixture_text(name)})
    assert response.status_code == 201, response.text


def test_import_report_has_both_field_sets(client: TestClient) -> None:
    set_config(client, "configs/sentiment.xml")
    response = client.post("/api/project/import", json=fixture_json("tasks/sentiment_mixed.json"))
    assert response.status_code == 201
    report = response.json()
    assert report["total_tasks"] == report["task_count"] == 5
    assert report["total_completions"] == report["completion_count"] == 1
    assert report["total_predictions"] == report["prediction_count"] == 2
    assert report["new_task_ids"] == [1, 2, 3, 4, 5]
    assert report["found_formats"] == {} and report["selected_formats"] is None
    assert report["files_as_tasks_list"] == {"type": None, "selected": True}
    assert report["task_preview"][0] == {"text": "A bare task: the item is the data"}
    labeled = report["task_preview"][2]
    assert labeled["text"] == "Labeled on import"
    assert labeled["completions"][0]["lead_time"] == 3.5
    assert isinstance(labeled["completions"][0]["id"], int)
    assert report["task_preview"][3]["predictions"][1]["model_version"] == "v2"


def test_single_object_is_one_task(client: TestClient) -> None:
    set_config(client, "configs/sentiment.xml")
    response = client.post("/api/project/import", json={"text": "only one"})
    assert response.status_code == 201
    assert client.get("/api/tasks").json()["tasks"][0]["data"] == {"text": "only one"}


def test_meta_is_kept(client: TestClient) -> None:
    set_config(client, "configs/sentiment.xml")
    client.post("/api/project/import", json=fixture_json("tasks/sentiment_mixed.json"))
    task = client.get("/api/tasks/2").json()
    assert task["meta"] == {"source": "crawl-7"}


def test_invalid_tasks_give_label_studio_messages_and_store_nothing(client: TestClient) -> None:
    set_config(client, "configs/sentiment.xml")
    response = client.post("/api/project/import", json=fixture_json("tasks/sentiment_invalid.json"))
    assert response.status_code == 422
    assert response.json() == fixture_json("tasks/sentiment_invalid.expected.json")
    assert client.get("/api/tasks").json()["total"] == 0
    assert client.get("/api/project").json()["task_count"] == 0


def test_empty_list_is_rejected(client: TestClient) -> None:
    response = client.post("/api/project/import", json=[])
    assert response.status_code == 400
    assert response.json() == ["data is empty"]
    assert client.get("/api/tasks").json()["total"] == 0


def test_scalar_json_is_rejected(client: TestClient) -> None:
    response = client.post("/api/project/import", json="text")
    assert response.status_code == 422
    assert response.json() == ["Incorrect input data type, it must be JSON dict or list"]


def test_malformed_json_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/api/project/import",
        content=b'[{"text": "a"',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()[0].startswith("Malformed JSON body")


def test_undefined_key_goes_to_first_config_key(client: TestClient) -> None:
    set_config(client, "configs/sentiment.xml")
    response = client.post("/api/project/import", json=[{"$undefined$": "plain line"}])
    assert response.status_code == 201
    assert client.get("/api/tasks/1").json()["data"] == {"text": "plain line"}


def test_ids_continue_after_existing_tasks(client: TestClient) -> None:
    set_config(client, "configs/sentiment.xml")
    first = client.post("/api/project/import", json=[{"text": "a"}, {"text": "b"}]).json()
    second = client.post("/api/project/import", json=[{"text": "c"}]).json()
    assert second["new_task_ids"][0] > max(first["new_task_ids"])
    listed = [t["data"]["text"] for t in client.get("/api/tasks").json()["tasks"]]
    assert listed == ["a", "b", "c"]


def test_oversized_body_is_413_and_stores_nothing(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from server.app import create_app

    small = dataclasses.replace(settings, max_body_size=1000)
    with TestClient(create_app(small)) as client:
        response = client.post("/api/project/import", json=[{"text": "x" * 2000}])
        assert response.status_code == 413
        assert response.json()["detail"].startswith("Request body is larger than the limit")
        assert client.get("/api/tasks").json()["total"] == 0
