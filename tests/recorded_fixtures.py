"""Label Studio 0.9.1's configs and the answers recorded from it, kept in the repository under
``tests/fixtures/label-studio-0.9.1/`` (see the README there).

Tests that use them must fail, not skip, when a file is missing: reading a fixture through
:func:`recorded_path` raises (at collection time for module-level reads) saying where it looked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).resolve().parent / "fixtures" / "label-studio-0.9.1"


def recorded_path(*parts: str) -> Path:
    """A path under the recorded fixtures; raises FileNotFoundError if it does not exist."""
    path = RECORDED.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: the recorded Label Studio 0.9.1 fixtures belong in the "
            "repository (tests/fixtures/label-studio-0.9.1/)"
        )
    return path


def recorded_json(*parts: str) -> Any:
    return json.loads(recorded_path(*parts).read_text(encoding="utf-8"))


def behaviour() -> dict[str, Any]:
    """``label-config-behaviour.json``: fixture path -> recorded answers."""
    data: dict[str, Any] = recorded_json("golden", "label-config-behaviour.json")
    assert len(data) >= 75, "label-config-behaviour.json looks truncated"
    return data


def config_text(key: str) -> str:
    """A fixture config as the golden file saw it: the template metadata comment stripped."""
    from server.services.config.label_config import strip_template_metadata

    return strip_template_metadata(recorded_path(key).read_text(encoding="utf-8"))


def validation_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = recorded_json("golden", "config-validation-cases.json")
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
