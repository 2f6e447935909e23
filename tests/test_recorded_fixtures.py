"""The recorded Label Studio 0.9.1 fixtures are part of the repository: a fresh clone runs its
suite with nothing beside it, and a missing fixture fails the tests instead of skipping them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.recorded_fixtures import RECORDED, recorded_path

REPOSITORY = Path(__file__).resolve().parents[1]


def test_recorded_fixtures_live_inside_the_repository() -> None:
    assert RECORDED.is_relative_to(REPOSITORY / "tests" / "fixtures")
    assert "label-studio-0.9.1/" in (REPOSITORY / "tests/fixtures/README.md").read_text("utf-8")
    assert recorded_path("golden", "label-config-behaviour.json").is_file()


def test_a_missing_fixture_raises_instead_of_skipping() -> None:
    with pytest.raises(FileNotFoundError, match=r"configs/no_such_template\.xml not found"):
        recorded_path("configs", "no_such_template.xml")


def test_no_test_or_benchmark_reads_files_beside_the_clone() -> None:
    # The specs folder beside the clone, by name: spelled in parts so that this guard is not
    # itself a reference to it.
    beside = "sha" + "red"
    outside = re.compile(rf"\.\./{beside}\b|parents\[\d\]\.parent|/work/{beside}\b")
    offenders = [
        f"{path.relative_to(REPOSITORY)}:{number}"
        for folder in ("tests", "bench")
        for path in sorted((REPOSITORY / folder).rglob("*.py"))
        if path.resolve() != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert offenders == []
