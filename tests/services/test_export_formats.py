"""Which formats a config offers (export-formats.md §2), checked against every template and
example config recorded from Label Studio 0.9.1 (``label-config-behaviour.json``)."""

from __future__ import annotations

import pytest

from server.services.config import label_config
from server.services.config.model import LabelConfig
from server.services.export.formats import FORMAT_NAMES, available_formats, data_keys
from server.settings import Settings
from tests.recorded_fixtures import recorded_json, recorded_path


def _parse(text: str) -> LabelConfig:
    return label_config.parse(label_config.normalise(text))


def test_every_recorded_config_offers_the_recorded_formats() -> None:
    recorded = recorded_json("golden", "label-config-behaviour.json")
    assert len(recorded) >= 70
    mismatches = {}
    for path, behaviour in recorded.items():
        config = _parse(recorded_path(path).read_text(encoding="utf-8"))
        offered = available_formats(config)
        yolo = "YOLO" in offered
        if [f for f in offered if f != "YOLO"] != behaviour["export_formats"]:
            mismatches[path] = (offered, behaviour["export_formats"])
        # YOLO (an extension) goes with VOC: Image + RectangleLabels.
        assert yolo == ("VOC" in offered), path
    assert mismatches == {}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("<View></View>", ["JSON", "JSON_MIN", "CSV", "TSV"]),
        (
            '<View><Image name="i" value="$img"/><Text name="t" value="$txt"/>'
            '<RectangleLabels name="r" toName="i"><Label value="A"/></RectangleLabels>'
            '<Labels name="l" toName="t"><Label value="B"/></Labels></View>',
            ["JSON", "JSON_MIN", "CSV", "TSV"],  # two data keys: only the basic formats
        ),
        (
            # Set membership over the whole config: the Labels need not point at the Text.
            '<View><Text name="t" value="$x"/><HyperText name="h" value="$x"/>'
            '<Labels name="l" toName="h"><Label value="B"/></Labels>'
            '<Choices name="c" toName="t"><Choice value="C"/></Choices></View>',
            ["JSON", "JSON_MIN", "CSV", "TSV", "CONLL2003"],
        ),
        (
            '<View><Image name="i" value="$img"/>'
            '<PolygonLabels name="p" toName="i"><Label value="A"/></PolygonLabels></View>',
            ["JSON", "JSON_MIN", "CSV", "TSV", "COCO"],
        ),
    ],
)
def test_availability_rules(config: str, expected: list[str]) -> None:
    assert available_formats(_parse(config)) == expected


def test_data_keys_come_from_objects_referenced_by_controls() -> None:
    config = _parse(
        '<View><Header value="$title"/><Text name="t" value="$body"/>'
        '<Choices name="c" toName="t"><Choice value="C"/></Choices></View>'
    )
    assert data_keys(config) == ["body"]
    assert FORMAT_NAMES[-1] == "YOLO"


def test_export_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "LABELGRAPH_EXPORT_FETCH_REMOTE": "yes",
            "LABELGRAPH_EXPORT_FETCH_TIMEOUT": "2.5",
            "LABELGRAPH_EXPORT_TTL": "60",
        }
    )
    assert settings.export_fetch_remote is True
    assert settings.export_fetch_timeout == 2.5 and settings.export_ttl == 60
    assert Settings.from_env({}).export_fetch_remote is False
    with pytest.raises(ValueError, match="LABELGRAPH_EXPORT_FETCH_REMOTE"):
        Settings.from_env({"LABELGRAPH_EXPORT_FETCH_REMOTE": "maybe"})
    with pytest.raises(ValueError, match="export_fetch_timeout"):
        Settings.from_env({"LABELGRAPH_EXPORT_FETCH_TIMEOUT": "0"})
