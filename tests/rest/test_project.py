import pytest
from starlette.testclient import TestClient

from tests.conftest import fixture_text

CONFIG = fixture_text("configs/sentiment.xml")


def test_get_project_shape(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/api/project").json()
    assert body["project_name"] == "project"
    assert body["task_count"] == 0 and body["completion_count"] == 0
    assert body["multi_session_mode"] is False
    assert body["data_types"] == {}
    assert body["config_has_control_tags"] is False
    assert body["label_config_line"] == "<View></View>"
    assert body["config"]["sampling"] == "sequential"
    assert body["config"]["allow_delete_completions"] is True
    assert ["tasks-json", 'Local [loading tasks from "tasks.json" file]'] in body[
        "available_storages"
    ]
    assert client.post("/api/project").json() == body


def test_config_from_form_json_and_xml(client: TestClient) -> None:
    assert client.post("/api/project/config", data={"label_config": CONFIG}).status_code == 201
    assert client.post("/api/project/config", json={"label_config": CONFIG}).status_code == 201
    for content_type in ("application/xml", "text/xml; charset=utf-8"):
        response = client.post(
            "/api/project/config", content=CONFIG, headers={"content-type": content_type}
        )
        assert response.status_code == 201
        assert response.headers["content-type"] == "application/json"
        assert response.json()["data_types"] == {"text": "Text"}
    body = client.get("/api/project").json()
    assert body["data_types"] == {"text": "Text"}
    assert body["config_has_control_tags"] is True
    assert "\n" not in body["label_config_line"]
    assert body["config"]["label_config_updated"] is True


def test_config_crlf_is_normalised(client: TestClient, gql) -> None:  # type: ignore[no-untyped-def]
    client.post("/api/project/config", data={"label_config": CONFIG.replace("\n", "\r\n")})
    assert "\r" not in gql("{ project { labelConfig } }")["project"]["labelConfig"]


def test_config_save_answers_the_saved_config(client: TestClient) -> None:
    """201 as Label Studio, with a JSON body (Label Studio's was empty; docs/compat.md)."""
    response = client.post(
        "/api/project/config", data={"label_config": CONFIG.replace("\n", "\r\n")}
    )
    assert response.status_code == 201
    project = client.get("/api/project").json()
    assert response.json() == {
        "label_config": CONFIG.replace("\r\n", "\n"),
        "label_config_line": project["label_config_line"],
        "data_types": {"text": "Text"},
        "config_has_control_tags": True,
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("", "Document is empty"),
        ("<View><Text name='t' value='$t'></View>", "Opening and ending tag mismatch"),
        (
            '<View><Text name="t" value="$t"/><Text name="t" value="$u"/></View>',
            "Label config contains non-unique names ['t', 't']",
        ),
        (
            '<View><Text name="t" value="$t"/><Choices name="c" toName="x">'
            '<Choice value="A"/></Choices></View>',
            "toName=\"x\" not found in names: ['c', 't']",
        ),
    ],
)
def test_invalid_configs(client: TestClient, config: str, message: str) -> None:
    response = client.post("/api/project/config", data={"label_config": config})
    assert response.status_code == 400
    (error,) = response.json()["label_config"]
    assert message in error
    response = client.post("/api/validate-config", data={"label_config": config})
    assert response.status_code == 400 and response.json()["label_config"] == [error]
    assert client.get("/api/project").json()["label_config_line"] == "<View></View>"


def test_missing_config(client: TestClient) -> None:
    response = client.post("/api/project/config", data={})
    assert response.status_code == 400
    assert response.json() == {"label_config": ["can only parse strings"]}
    response = client.post("/api/validate-config", data={})
    assert response.status_code == 417
    assert response.json()["detail"] == "No label_config in POST"


def test_validate_config_accepts_form_and_json(client: TestClient) -> None:
    assert client.post("/api/validate-config", data={"label_config": CONFIG}).status_code == 204
    response = client.post("/api/validate-config", json={"label_config": CONFIG})
    assert response.status_code == 204 and response.content == b""


def test_single_choice_is_accepted(client: TestClient) -> None:
    config = (
        '<View><Text name="t" value="$t"/><Choices name="c" toName="t">'
        '<Choice value="Only"/></Choices></View>'
    )
    assert client.post("/api/validate-config", data={"label_config": config}).status_code == 204


def test_xml_entities_are_refused(client: TestClient) -> None:
    config = (
        '<?xml version="1.0"?><!DOCTYPE v [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<View><Text name="t" value="&x;"/></View>'
    )
    response = client.post("/api/project/config", data={"label_config": config})
    assert response.status_code == 400
    assert "not allowed" in response.json()["label_config"][0]


def test_patch_project_settings(client: TestClient) -> None:
    body = {
        "title": "Reviews",
        "sampling": "uniform",
        "allow_delete_completions": False,
        "unknown_key": 1,
    }
    response = client.patch("/api/project", json=body)
    assert response.status_code == 201
    project = response.json()
    assert project["config"]["title"] == "Reviews"
    assert project["config"]["sampling"] == "uniform"
    assert project["config"]["allow_delete_completions"] is False
    assert client.get("/api/project").json()["config"]["title"] == "Reviews"


def test_patch_project_bad_values(client: TestClient) -> None:
    response = client.patch("/api/project", json={"sampling": "best-first"})
    assert response.status_code == 400
    assert "Unknown sampling method 'best-first'" in response.json()["detail"]
    response = client.patch("/api/project", json={"allow_delete_completions": "yes"})
    assert response.status_code == 400
    assert client.patch("/api/project", content=b"x").status_code == 400


def test_new_project_needs_multi_session(client: TestClient) -> None:
    response = client.post("/api/project?new=1&desc=Second")
    assert response.status_code == 400
    assert "start-multi-session" in response.json()["detail"]


def test_health_version_and_headers(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.json() == {"status": "up"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    version = client.get("/version").json()
    assert version["label-studio-backend"] == "0.9.1"
    assert set(version["label-studio-frontend"]) == {"branch", "commit", "date", "message"}
    # The web app bundles Label Studio's editor (pip install builds it), not its data manager.
    assert version["label-studio-frontend"]["message"] == (
        "label-studio 0.9.1 (npm), bundled by labelgraph"
    )
    assert version["label-studio-datamanager"]["message"] == "not bundled"
    response = client.delete("/api/completions")
    assert response.headers["allow"] == "GET, POST, PATCH, PUT, DELETE"


def test_trailing_slash_and_wrong_method(client: TestClient) -> None:
    assert client.get("/api/health/").json() == {"status": "up"}
    response = client.put("/api/health")
    assert response.status_code == 405
    assert response.json()["detail"].startswith("Method PUT not allowed")
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"status": 404, "detail": "Not found: /api/nothing-here"}
