"""The specs' golden fixtures in ``../shared`` (beside the repository, as in CI).

Tests that use them must fail, not skip, when the folder is missing: reading a fixture through
:func:`shared_path` raises at collection time with a message saying where it looked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: the shared specs and fixtures must be beside the repository "
            "as ../shared"
        )
    return path


def shared_json(*parts: str) -> Any:
    return json.loads(shared_path(*parts).read_text(encoding="utf-8"))


def behaviour() -> dict[str, Any]:
    """``label-config-behaviour.json``: fixture path -> recorded answers."""
    data = shared_json("fixtures", "golden", "label-config-behaviour.json")
    assert len(data) >= 75, "label-config-behaviour.json looks truncated"
    return data


def config_text(key: str) -> str:
    """A fixture config as the golden file saw it: the template metadata comment stripped."""
    from server.services.config.label_config import strip_template_metadata

    return strip_template_metadata(shared_path("fixtures", key).read_text(encoding="utf-8"))


def validation_cases() -> list[dict[str, Any]]:
    cases = shared_json("fixtures", "golden", "config-validation-cases.json")
    assert len(cases) >= 39, "config-validation-cases.json looks truncated"
    return cases


def same_sample(expected: Any, got: Any) -> bool:
    """Sample data equality, with the golden file's summary of random time series."""
    if isinstance(expected, dict) and "__timeseries_json__" in expected:
        columns = list(expected["__timeseries_json__"])
        return (
            isinstance(got, dict)
            and list(got) == columns
            and all(isinstance(v, list) and len(v) == 100 for v in got.values())
        )
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(same_sample(expected[k], got[k]) for k in got)
    return bool(expected == got)
