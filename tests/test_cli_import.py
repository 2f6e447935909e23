"""``labelgraph import PROJECT_DIR FILE...``."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from server import cli
from server.import_cli import ProgressBar, render
from tests.conftest import FIXTURES, TEST_DATABASE_URL

pytestmark = pytest.mark.skipif(
    bool(TEST_DATABASE_URL), reason="the CLI's project creation is tested on SQLite"
)
IMPORTS = FIXTURES / "imports"


def test_import_files_into_a_project(tmp_path: Path, capsys, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    project = tmp_path / "p"
    config = FIXTURES / "configs/text_classification.xml"
    assert cli.main(["init", str(project), "--label-config", str(config)]) == 0
    capsys.readouterr()
    code = cli.main(
        ["import", str(project), str(IMPORTS / "reviews.csv"), str(IMPORTS / "tasks.json")]
    )
    assert code == 1  # different columns in the two files: nothing imported
    assert "You're trying to import inconsistent data" in caplog.text
    assert "nothing was imported" in caplog.text
    code = cli.main(["import", str(project), str(IMPORTS / "lines.txt"), "--no-progress"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total_tasks"] == report["task_count"] == 4
    assert report["found_formats"] == {".txt": 1}
    assert report["task_preview"][0] == {"text": "line one"}
    assert report["new_task_ids"] == [1, 2, 3, 4]
    assert (project / "upload" / "1b8e73-lines.txt").is_file()
    assert "imported 4 tasks" in caplog.text


def test_import_needs_a_project_and_files(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    assert cli.main(["import", str(tmp_path / "missing"), str(IMPORTS / "lines.txt")]) == 2
    assert "does not exist" in caplog.text
    (tmp_path / "p").mkdir()
    assert cli.main(["import", str(tmp_path / "p"), str(tmp_path / "nope.csv")]) == 2
    assert "not a file" in caplog.text


def test_progress_bar() -> None:
    assert render(1234, 50, 100) == "[" + "#" * 15 + "." * 15 + "]  50%  1,234 tasks"
    assert render(0, 0, 0).endswith("100%  0 tasks")
    stream = io.StringIO()
    bar = ProgressBar(stream, enabled=True)
    bar.update(10, 1, 4, force=True)
    bar.update(20, 4, 4)
    bar.close()
    lines = stream.getvalue()
    assert lines.startswith("\r[") and lines.endswith("100%  20 tasks\n")
    quiet = io.StringIO()
    ProgressBar(quiet, enabled=False).update(1, 1, 1, force=True)
    assert quiet.getvalue() == ""
