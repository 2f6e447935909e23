"""Config routes against the golden answers of Label Studio 0.9.1: every template and example
config, every hand-made validation case (project state included), and where
``compat-decisions.md`` says fix, the fixed answer (each listed in docs/compat.md)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.recorded_fixtures import behaviour, config_text, same_sample, validation_cases

BEHAVIOUR = behaviour()
CASES = {case["name"]: case for case in validation_cases()}
EXAMPLE_ERROR = "error while example generating"
TEXT = "To have faith is to trust yourself to the water"

# Cases whose recorded answer compat-decisions.md fixes: (validate status, body) and, when the
# case records one, (import-example status, body or None for "the 400 error body").
FIXED: dict[str, dict[str, Any]] = {
    # a single <Choice> is accepted.
    "single_choice": {"validate": (204, ""), "import_example": (200, {"text": TEXT})},
    "nested_view_choices_single": {
        "validate": (204, ""),
        "import_example": (200, {"text": TEXT}),
    },
    # Q-22 again: the config now passes the structure check and fails on the stored label.
    "derived_drop_choice": {
        "validate": (
            400,
            {
                "label_config": [
                    "You've already completed some tasks, but some of them couldn't be loaded "
                    'with this config: there are labels already created for "sentiment":\n'
                    "['neg']"
                ]
            },
        )
    },
    # The original crashed while formatting the message ("sequence item 1: expected str
    # instance, int found"; a bare 500 on import-example): a clear message and a 400.
    "choice_no_value": {
        "validate": (
            400,
            {"label_config": ["Validation failed on Choice/0: 'value' is a required property"]},
        ),
        "import_example": (400, None),
    },
    # A single object tag or Label without a required attribute: the message names it, as Label
    # Studio 0.9.1 does with today's jsonschema (recorded with 3.2: "OrderedDict([...]) is not
    # of type 'array'").
    **{
        name: {
            "validate": (
                400,
                {"label_config": [f"Validation failed on : '{attribute}' is a required property"]},
            ),
            "import_example": (400, None),
        }
        for name, attribute in [
            ("image_no_name", "name"),
            ("image_no_value", "value"),
            ("text_no_value", "value"),
            ("label_no_value", "value"),
        ]
    },
}

# Tags missing a required attribute (beyond the golden cases): the message names the first
# missing one, in the order of the original's JSON schema (name, toName, value).
T = '<Text name="t" value="$text"/>'
MISSING_ATTRIBUTE = [
    ('<View><Text name="t"/></View>', "", "value"),
    ('<View><Text value="$text"/></View>', "", "name"),
    ("<View><Text/></View>", "", "name"),
    ('<View><HyperText name="h"/></View>', "", "value"),
    ('<View><HyperText value="$h"/></View>', "", "name"),
    ('<View><Image name="i"/></View>', "", "value"),
    ('<View><View><Text name="t"/></View></View>', "", "value"),
    (f'<View>{T}<Text name="u"/></View>', "Text/1", "value"),
    (
        f'<View>{T}<Choices toName="t"><Choice value="A"/><Choice value="B"/></Choices></View>',
        "",
        "name",
    ),
    (
        f'<View>{T}<Choices name="c"><Choice value="A"/><Choice value="B"/></Choices></View>',
        "",
        "toName",
    ),
    (f'<View>{T}<Labels toName="t"><Label value="A"/></Labels></View>', "", "name"),
    (f'<View>{T}<Labels name="l"><Label value="A"/></Labels></View>', "", "toName"),
    (f'<View>{T}<Labels name="l" toName="t"><Label alias="a"/></Labels></View>', "", "value"),
    (
        f'<View>{T}<Labels name="l" toName="t"><Label value="A"/><Label/></Labels></View>',
        "Label/1",
        "value",
    ),
    (
        f'<View>{T}<Choices name="c" toName="t"><Choice value="A"/><Choice/></Choices></View>',
        "Choice/1",
        "value",
    ),
    ('<View><View><Label alias="x"/></View></View>', "", "value"),
]


@pytest.mark.parametrize(("config", "path", "attribute"), MISSING_ATTRIBUTE)
def test_missing_required_attribute_is_named(
    client: TestClient, config: str, path: str, attribute: str
) -> None:
    message = f"Validation failed on {path}: '{attribute}' is a required property"
    response = client.post("/api/validate-config", data={"label_config": config})
    assert (response.status_code, response.json()) == (400, {"label_config": [message]})
    response = client.get("/api/import-example", params={"label_config": config})
    _check_example_error(response, {"label_config": [message]})


def _check_example_error(response: Any, validate_body: Any) -> None:
    """Import-example errors are JSON (compat: no plain-text error bodies) with the message."""
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == 400 and body["detail"] == EXAMPLE_ERROR
    if isinstance(validate_body, dict):
        assert body["label_config"] == validate_body["label_config"]


@pytest.mark.parametrize("key", sorted(BEHAVIOUR))
def test_template_and_example_configs(client: TestClient, key: str) -> None:
    expected = BEHAVIOUR[key]
    text = config_text(key)
    response = client.post("/api/validate-config", data={"label_config": text})
    assert (response.status_code, response.text) == (204, expected["validate"]["body"])
    response = client.get("/api/import-example", params={"label_config": text})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    if expected["import_example"]["status"] == 500:
        # ts_loading_json: the original crashed; fixed (no time column), docs/compat.md.
        assert list(response.json()["ts"]) == ["first_column", "second_column"]
    else:
        assert same_sample(expected["import_example"]["body"], response.json())
    # Saving it works too and the project reports what the config derives.
    assert client.post("/api/project/config", data={"label_config": text}).status_code == 201
    project = client.get("/api/project").json()
    assert project["data_types"] == expected["data_types"]
    assert project["config_has_control_tags"] == bool(expected["parsed_config"])


def _set_up(client: TestClient, state: Any) -> None:
    if not isinstance(state, dict):
        return
    response = client.post(
        "/api/project/config", data={"label_config": state["saved_label_config"]}
    )
    assert response.status_code == 201, response.text
    tasks = [{"data": task["data"]} for task in state.get("tasks", [])]
    report = client.post("/api/project/import", json=tasks).json()
    completion = state.get("completion_on_task_0")
    if completion is not None:
        first = report["new_task_ids"][0]
        response = client.post(f"/api/tasks/{first}/completions", json=completion)
        assert response.status_code == 201, response.text


@pytest.mark.parametrize("name", sorted(CASES))
def test_validation_cases(client: TestClient, name: str) -> None:
    case = CASES[name]
    fixed = FIXED.get(name, {})
    _set_up(client, case["project_state"])
    status, body = fixed.get(
        "validate", (case["validate_config"]["status"], case["validate_config"]["body"])
    )
    config = case["label_config"]
    if case.get("endpoint") == "POST /api/project/config (JSON body)":
        response = client.post("/api/project/config", json={"label_config": config})
        assert response.status_code == (201 if status == 204 else status)
    else:
        response = client.post("/api/validate-config", data={"label_config": config})
        assert response.status_code == status
    assert (response.json() if status == 400 else response.text) == body
    if status == 400:
        # Saving is refused with the same message; the stored config stays.
        before = client.get("/api/project").json()["label_config_line"]
        saved = client.post("/api/project/config", data={"label_config": config})
        assert (saved.status_code, saved.json()) == (400, body)
        assert client.get("/api/project").json()["label_config_line"] == before
    if "import_example" not in case:
        return
    example_status, example_body = fixed.get(
        "import_example", (case["import_example"]["status"], case["import_example"]["body"])
    )
    response = client.get("/api/import-example", params={"label_config": config})
    if example_status == 200:
        assert response.status_code == 200
        assert response.json() == example_body
    else:
        _check_example_error(response, body)


def test_every_fixed_case_is_listed_in_compat_md() -> None:
    from pathlib import Path

    compat = (Path(__file__).parents[2] / "docs" / "compat.md").read_text(encoding="utf-8")
    for name in [*FIXED, "ts_loading_json"]:
        assert f"`{name}`" in compat, name


def test_import_example_ignores_project_data(sentiment_project: TestClient) -> None:
    """compat Q-23: the sample depends only on the config, not on existing tasks/completions."""
    client = sentiment_project
    client.post("/api/tasks/1/completions", json={"result": []})
    config = '<View><Image name="i" value="$picture"/></View>'
    assert client.post("/api/validate-config", data={"label_config": config}).status_code == 400
    response = client.post("/api/import-example", data={"label_config": config})
    assert response.json() == {"picture": "static/samples/sample.jpg"}
