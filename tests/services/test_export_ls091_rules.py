"""The export rules of Label Studio 0.9.1 (converter 0.0.23rc3) that later converters changed,
each stated in docs/compat.md (Export): COCO category ids by first appearance, integer pixel
boxes, rotation ignored, only the latest non-cancelled completion per task."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server import db
from server.services import projects
from server.services.imports import json_import as imports
from server.settings import Settings
from tests.export_support import run_export

# Config order Dog, Cat, Bird, Fish; sorted order Bird, Cat, Dog, Fish.
CONFIG = (
    '<View><Image name="img" value="$image"/><RectangleLabels name="box" toName="img">'
    '<Label value="Dog"/><Label value="Cat"/><Label value="Bird"/><Label value="Fish"/>'
    "</RectangleLabels></View>"
)


@pytest.fixture
def project_id(client: Any) -> int:
    return int(client.app.state.project_id)


def box(label: str, x: float, y: float, w: float, h: float, rotation: float = 0) -> dict[str, Any]:
    return {
        "from_name": "box",
        "to_name": "img",
        "type": "rectanglelabels",
        "original_width": 80,
        "original_height": 60,
        "value": {
            "x": x,
            "y": y,
            "width": w,
            "height": h,
            "rotation": rotation,
            "rectanglelabels": [label],
        },
    }


def completion(
    created_at: int, *results: dict[str, Any], cancelled: bool = False
) -> dict[str, Any]:
    return {"created_at": created_at, "was_cancelled": cancelled, "result": list(results)}


def task(image: str, *completions: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": {"image": f"http://example.invalid/{image}.jpg"},
        "completions": list(completions),
    }


def import_project(project_id: int, tasks: list[dict[str, Any]]) -> None:
    def run() -> None:
        projects.set_label_config(project_id, CONFIG)
        imports.import_tasks(project_id, tasks)

    db.with_connection(run)


def test_coco_category_ids_follow_first_appearance(settings: Settings, project_id: int) -> None:
    import_project(
        project_id,
        [
            task("a", completion(1, box("Cat", 0, 0, 10, 10), box("Dog", 10, 10, 10, 10))),
            task("b", completion(1, box("Bird", 0, 0, 10, 10), box("Cat", 5, 5, 10, 10))),
        ],
    )
    _, files = run_export(settings, project_id, "COCO")
    coco = json.loads(files["result.json"])
    # Neither the config's order (Dog, Cat, Bird) nor sorted (Bird, Cat, Dog); Fish, never
    # used, is not a category.
    assert coco["categories"] == [
        {"id": 0, "name": "Cat"},
        {"id": 1, "name": "Dog"},
        {"id": 2, "name": "Bird"},
    ]
    assert [a["category_id"] for a in coco["annotations"]] == [0, 1, 2, 0]


def test_boxes_are_truncated_integers_and_rotation_is_ignored(
    settings: Settings, project_id: int
) -> None:
    import_project(
        project_id, [task("x", completion(1, box("Cat", 10.5, 20.25, 30.9, 40.1, rotation=45)))]
    )
    _, coco_files = run_export(settings, project_id, "COCO")
    (annotation,) = json.loads(coco_files["result.json"])["annotations"]
    # export-formats.md §4.6's worked example, unchanged by the 45° rotation.
    assert annotation["bbox"] == [8, 12, 24, 24]
    assert annotation["area"] == 576
    assert all(type(v) is int for v in [*annotation["bbox"], annotation["area"]])

    _, voc_files = run_export(settings, project_id, "VOC")
    voc = voc_files["Annotations/x.xml"].decode("utf-8")
    assert "<xmin>8</xmin>\n<ymin>12</ymin>\n<xmax>32</xmax>\n<ymax>36</ymax>" in voc


def test_only_the_latest_non_cancelled_completion_is_exported(
    settings: Settings, project_id: int
) -> None:
    import_project(
        project_id,
        [
            task(
                "x",
                completion(60, box("Dog", 0, 0, 10, 10)),
                completion(50, box("Cat", 0, 0, 10, 10)),
                completion(70, box("Bird", 0, 0, 10, 10), cancelled=True),
            )
        ],
    )
    _, coco_files = run_export(settings, project_id, "COCO")
    coco = json.loads(coco_files["result.json"])
    assert coco["categories"] == [{"id": 0, "name": "Dog"}]
    assert len(coco["annotations"]) == 1

    _, min_files = run_export(settings, project_id, "JSON_MIN")
    (item,) = json.loads(min_files["result.json"])
    assert [v["rectanglelabels"] for v in item["box"]] == [["Dog"]]

    # JSON keeps every completion, cancelled included.
    _, json_files = run_export(settings, project_id, "JSON")
    (document,) = json.loads(json_files["result.json"])
    labels = [c["result"][0]["value"]["rectanglelabels"] for c in document["completions"]]
    assert sorted(labels) == [["Bird"], ["Cat"], ["Dog"]]
