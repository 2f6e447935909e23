"""``labelgraph export PROJECT_DIR --format F -o FILE``."""

import json
import logging
import zipfile
from pathlib import Path

import pytest

from server import cli
from tests.conftest import FIXTURES, TEST_DATABASE_URL

pytestmark = pytest.mark.skipif(
    bool(TEST_DATABASE_URL), reason="the CLI's project creation is tested on SQLite"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    tasks = [
        {"data": {"text": f"task {i}"}, "completions": [{"result": []}] if i % 2 else []}
        for i in range(10)
    ]
    input_path = tmp_path / "tasks.json"
    input_path.write_text(json.dumps(tasks))
    directory = tmp_path / "cli_project"
    config = str(FIXTURES / "configs/sentiment.xml")
    args = ["init", str(directory), "--label-config", config, "--input-path", str(input_path)]
    assert cli.main(args) == 0
    return directory


def test_export_writes_the_zip_with_a_progress_bar(project: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out.zip"
    assert cli.main(["export", str(project), "--format", "JSON_MIN", "-o", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        rows = json.loads(archive.read("result.json"))
    assert [row["text"] for row in rows] == [f"task {i}" for i in (1, 3, 5, 7, 9)]
    err = capsys.readouterr().err
    assert "export JSON_MIN 100% |" in err and "5/5 tasks" in err
    assert not list((project / "export").glob("*.zip"))  # moved, not copied


def test_export_into_a_directory_with_all_tasks(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "exports"
    target.mkdir()
    args = ["export", str(project), "-f", "CSV", "-o", str(target), "--all-tasks"]
    assert cli.main(args) == 0
    (written,) = target.iterdir()
    assert written.name.endswith("-CSV.zip")
    with zipfile.ZipFile(written) as archive:
        assert archive.read("result.csv").decode().count("\n") == 11  # header + 10 tasks


def test_export_errors(project: Path, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    assert cli.main(["export", str(project), "--format", "COCO", "-o", str(tmp_path / "x")]) == 2
    assert "Format COCO is not supported for this project" in caplog.text
    assert cli.main(["export", str(tmp_path / "missing"), "--format", "JSON"]) == 2
    assert "does not exist" in caplog.text


def test_format_names_are_case_insensitive(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.zip"
    assert cli.main(["export", str(project), "--format", "json_min", "-o", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        assert len(json.loads(archive.read("result.json"))) == 5


def test_nothing_to_export_says_why(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    directory = tmp_path / "unlabeled"
    config = str(FIXTURES / "configs/sentiment.xml")
    tasks = str(FIXTURES / "imports/lines.txt")
    assert cli.main(["init", str(directory), "--label-config", config]) == 0
    out = tmp_path / "out.zip"
    caplog.clear()
    assert cli.main(["export", str(directory), "-f", "CSV", "-o", str(out)]) == 1
    assert caplog.records[-1].getMessage() == (
        "nothing was exported: the project has no tasks (add some with `labelgraph import`)"
    )
    assert cli.main(["import", str(directory), tasks, "--no-progress"]) == 0
    assert cli.main(["export", str(directory), "-f", "CSV", "-o", str(out)]) == 1
    message = caplog.records[-1].getMessage()
    assert message.startswith("nothing was exported: none of the project's ")
    assert "tasks has a completion" in message and "add --all-tasks" in message
    assert not out.exists()
    assert not list((directory / "export").glob("*.zip"))
    assert cli.main(["export", str(directory), "-f", "CSV", "-o", str(out), "--all-tasks"]) == 0
    assert out.is_file()
