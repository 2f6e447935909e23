"""GraphQL: structured config errors, the config mutation, the dry run, the parsed model,
sample tasks, and the per-project parse cache."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from server.services.config import label_config as lc
from server.services.config.model import LabelConfig
from tests.conftest import GraphQL, fixture_text

SENTIMENT = fixture_text("configs/sentiment.xml")
VALIDATE = """
query V($c: String!, $check: Boolean! = true) {
  validateLabelConfig(labelConfig: $c, checkProjectData: $check) {
    ok errors { message code tag attribute line }
  }
}"""
SET = "mutation S($c: String!) { setLabelConfig(labelConfig: $c) { labelConfigVersion } }"
IMPACT = """
query I($c: String!, $first: Int! = 20) {
  project { labelConfigImpact(labelConfig: $c, first: $first) {
    ok errors { message code tag attribute }
    brokenCompletionCount brokenCompletions { completionId taskId reasons }
  } }
}"""
NO_NEGATIVE = SENTIMENT.replace('    <Choice value="Negative"/>\n', "")


def test_validate_gives_structured_errors(gql: GraphQL) -> None:
    result = gql(VALIDATE, {"c": '<View>\n<Text name="t"/>\n</View>'})["validateLabelConfig"]
    assert result == {
        "ok": False,
        "errors": [
            {
                "message": "Validation failed on : 'value' is a required property",
                "code": "STRUCTURE",
                "tag": "Text",
                "attribute": "value",
                "line": 2,
            }
        ],
    }
    result = gql(VALIDATE, {"c": '<!DOCTYPE v [<!ENTITY a "b">]><View/>'})["validateLabelConfig"]
    assert result["errors"][0]["code"] == "FORBIDDEN_XML"
    assert gql(VALIDATE, {"c": SENTIMENT})["validateLabelConfig"] == {"ok": True, "errors": []}


def test_set_label_config_error_extensions(gql: GraphQL) -> None:
    error = gql.error(SET, {"c": '<View><Text name="t" value="$t"/><Text name="t" value="$u"/>'})
    assert error["code"] == "INVALID_LABEL_CONFIG"
    error = gql.error(
        SET, {"c": '<View><Text name="t" value="$t"/><Text name="t" value="$u"/></View>'}
    )
    assert error["message"] == "Label config contains non-unique names ['t', 't']"
    assert error["errors"] == [error["message"]]
    assert error["configErrors"] == [
        {
            "message": error["message"],
            "code": "DUPLICATE_NAME",
            "tag": "Text",
            "attribute": "name",
            "line": 1,
        }
    ]
    assert gql(SET, {"c": SENTIMENT})["setLabelConfig"]["labelConfigVersion"] == 2
    assert gql(SET, {"c": SENTIMENT})["setLabelConfig"]["labelConfigVersion"] == 3


def test_size_limit_is_a_setting(client: TestClient, settings: Any, project_id: int) -> None:
    import dataclasses

    small = GraphQL(dataclasses.replace(settings, max_label_config_size=64), project_id)
    error = small.error(SET, {"c": SENTIMENT})
    assert error["configErrors"][0]["code"] == "TOO_LARGE"
    assert "the limit is 64 bytes" in error["message"]


def test_project_checks_and_dry_run(sentiment_project: TestClient, gql: GraphQL) -> None:
    client = sentiment_project
    for task_id in (1, 2):
        result = [
            {
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["Negative"]},
            }
        ]
        assert client.post(f"/api/tasks/{task_id}/completions", json={"result": result}).is_success
    expected = (
        "You've already completed some tasks, but some of them couldn't be loaded with this "
        "config: there are labels already created for \"sentiment\":\n['Negative']"
    )
    result = gql(VALIDATE, {"c": NO_NEGATIVE})["validateLabelConfig"]
    assert result["errors"][0]["message"] == expected
    assert result["errors"][0]["code"] == "ORPHANED_LABELS"
    # Without the project's data the config itself is fine.
    assert gql(VALIDATE, {"c": NO_NEGATIVE, "check": False})["validateLabelConfig"]["ok"]

    impact = gql(IMPACT, {"c": NO_NEGATIVE, "first": 1})["project"]["labelConfigImpact"]
    assert impact["ok"] is False
    assert impact["brokenCompletionCount"] == 2
    (broken,) = impact["brokenCompletions"]
    assert broken["taskId"] == 1
    assert broken["reasons"] == [
        "there are labels already created for \"sentiment\":\n['Negative']"
    ]

    renamed = SENTIMENT.replace('name="sentiment"', 'name="mood"')
    impact = gql(IMPACT, {"c": renamed})["project"]["labelConfigImpact"]
    assert [e["code"] for e in impact["errors"]] == ["ORPHANED_RESULTS", "ORPHANED_CONTROL"]
    assert impact["brokenCompletionCount"] == 3  # the imported completion too

    other_key = SENTIMENT.replace("$text", "$body")
    impact = gql(IMPACT, {"c": other_key})["project"]["labelConfigImpact"]
    assert impact["errors"][0]["code"] == "MISSING_DATA_KEY"
    assert impact["brokenCompletionCount"] == 0

    assert gql(IMPACT, {"c": SENTIMENT + " "})["project"]["labelConfigImpact"]["ok"]
    # Deleting the offending completions unblocks the change.
    client.delete("/api/tasks/1/completions")
    client.delete("/api/tasks/2/completions")
    assert gql(IMPACT, {"c": NO_NEGATIVE})["project"]["labelConfigImpact"]["ok"]
    assert client.post("/api/project/config", data={"label_config": NO_NEGATIVE}).status_code == 201


def test_parsed_config_and_sample_task(gql: GraphQL) -> None:
    gql(SET, {"c": fixture_text("configs/image_bbox.xml")})
    parsed = gql(
        "{ project { parsedLabelConfig { dataTypes exportFormats importFormats line outputSchema"
        " objects { name tag value isVariable } controls { name tag toName resultType labels }"
        " visualTags } } }"
    )["project"]["parsedLabelConfig"]
    assert parsed["exportFormats"] == ["JSON", "JSON_MIN", "CSV", "TSV", "COCO", "VOC"]
    assert parsed["importFormats"] == ["json", "csv", "tsv", "txt"]
    assert parsed["objects"] == [
        {"name": "image", "tag": "Image", "value": "image", "isVariable": True}
    ]
    assert parsed["controls"][0]["resultType"] == "rectanglelabels"
    assert parsed["outputSchema"]["label"]["inputs"] == [{"type": "Image", "value": "image"}]
    assert "View" in parsed["visualTags"]

    sample = gql(
        '{ sampleTask(labelConfig: "<View><Audio name=\\"a\\" value=\\"$url\\"/></View>") }'
    )
    assert sample["sampleTask"] == {"url": "static/samples/game.wav"}
    error = gql.error('{ sampleTask(labelConfig: "<View>") }')
    assert error["code"] == "INVALID_LABEL_CONFIG"
    parsed = gql('{ parseLabelConfig(labelConfig: "<View/>") { dataTypes exportFormats } }')
    assert parsed["parseLabelConfig"] == {
        "dataTypes": {},
        "exportFormats": ["JSON", "JSON_MIN", "CSV", "TSV"],
    }
    file = gql('{ project { sampleTaskFile(format: "json") { filename mediaType content } } }')
    assert file["project"]["sampleTaskFile"]["mediaType"] == "application/json"


def test_requests_never_reparse_a_saved_config(
    client: TestClient, gql: GraphQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.post("/api/project/config", data={"label_config": SENTIMENT})
    client.post("/api/project/import", json=[{"text": "a"}])
    calls: list[str] = []
    real = lc.parse_uncached

    def counting(text: Any, max_bytes: int | None = lc.DEFAULT_MAX_BYTES) -> LabelConfig:
        calls.append(text)
        return real(text, max_bytes)

    monkeypatch.setattr(lc, "parse_uncached", counting)
    for _ in range(3):
        assert client.get("/api/project").json()["data_types"] == {"text": "Text"}
        assert client.get("/api/tasks").status_code == 200
        assert client.post("/api/project/import", json=[{"text": "b"}]).status_code == 201
        assert client.patch("/api/tasks/1", json={"data": {"text": "c"}}).status_code == 200
        gql("{ project { labelConfigLine dataTypes parsedLabelConfig { exportFormats } } }")
    assert calls == []
    # A new version is parsed once, when it is saved, and then served from the cache.
    changed = SENTIMENT.replace("Neutral", "Mixed")
    client.post("/api/project/config", data={"label_config": changed})
    client.get("/api/project")
    client.get("/api/project")
    assert len(calls) <= 1
