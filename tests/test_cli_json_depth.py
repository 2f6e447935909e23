"""The command line reads JSON files with the nesting bound of every other JSON input:
``labelgraph init|start --input-path`` (json.loads ended in a RecursionError traceback) and
``labelgraph import``."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import cli
from tests.conftest import FIXTURES, TEST_DATABASE_URL
from tests.live_server import free_port

pytestmark = pytest.mark.skipif(
    bool(TEST_DATABASE_URL), reason="the CLI's project creation is tested on SQLite"
)
TOO_DEEP = "JSON nesting is deeper than the limit of {} levels (LABELGRAPH_MAX_JSON_DEPTH)"
CONFIG = str(FIXTURES / "configs/text_classification.xml")


def deep_file(tmp_path: Path, levels: int) -> Path:
    path = tmp_path / "deep.json"
    path.write_text('[{"text": "a", "deep": ' + "[" * levels + "]" * levels + "}]")
    return path


@pytest.mark.parametrize("command", ["init", "start"])
def test_input_path_nested_too_deeply_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, command: str
) -> None:
    project = tmp_path / "p"
    args = [command, str(project), "--label-config", CONFIG, "--input-path"]
    args += [str(deep_file(tmp_path, 50_000))]
    if command == "start":
        args += ["--init", "--port", str(free_port())]
    assert cli.main(args) == 2
    assert f"cannot initialise {project}: {TOO_DEEP.format(100)}" in caplog.text
    assert "RecursionError" not in caplog.text
    assert not (project / "labelgraph.db").exists()


def test_input_path_follows_the_configured_depth(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABELGRAPH_MAX_JSON_DEPTH", "5")
    path = deep_file(tmp_path, 4)  # 6 levels with the list and the task
    assert cli.main(["init", str(tmp_path / "p"), "--input-path", str(path)]) == 2
    assert TOO_DEEP.format(5) in caplog.text


def test_import_of_a_deep_file_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    project = tmp_path / "p"
    assert cli.main(["init", str(project), "--label-config", CONFIG]) == 0
    path = deep_file(tmp_path, 50_000)
    assert cli.main(["import", str(project), str(path), "--no-progress"]) == 1
    assert f"Failed to parse input file {path}: {TOO_DEEP.format(100)}" in caplog.text
    assert "nothing was imported" in caplog.text
    assert not any((project / "upload").glob("*"))
