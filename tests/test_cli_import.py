"""``labelgraph import PROJECT_DIR FILE...``."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from server import cli
from server.cli_output import logs_below
from server.import_cli import ProgressBar, UserFileNames, render
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
    (summary,) = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"imported 4 tasks, 0 completions, 0 predictions in \d+\.\d\d s", summary)
    code = cli.main(["import", str(project), str(IMPORTS / "lines.txt"), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total_tasks"] == report["task_count"] == 4
    assert report["found_formats"] == {".txt": 1}
    assert report["task_preview"][0] == {"text": "line one"}
    assert report["new_task_ids"] == [5, 6, 7, 8]
    assert (project / "upload" / "1b8e73-lines.txt").is_file()


def test_errors_name_the_users_file(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "p"
    assert cli.main(["init", str(project)]) == 0
    truncated = FIXTURES / "cli/truncated.json"
    assert cli.main(["import", str(project), str(truncated), "--no-progress"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0].startswith(f"Failed to parse input file {truncated}: ")
    assert errors[1] == "nothing was imported"


def test_user_file_names() -> None:
    names = UserFileNames([Path("data/my file.json"), Path("a/x.csv"), Path("b/x.csv")])
    assert names.restore("Failed to parse input file 61b8c3-my_file.json: bad") == (
        "Failed to parse input file data/my file.json: bad"
    )
    assert names.restore("in 0a0b0c-x.csv and 0a0b0c-x.csv.bak") == (
        "in a/x.csv or b/x.csv and 0a0b0c-x.csv.bak"
    )


def test_log_lines_start_below_the_progress_bar() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        bar = ProgressBar(stream, enabled=True)
        with logs_below(bar):
            bar.update(10, 1, 4, force=True)
            logging.getLogger("server.services").warning("a warning while importing")
            bar.update(40, 4, 4, force=True)
        bar.close()
        logging.getLogger("labelgraph").warning("after")
    finally:
        root.removeHandler(handler)
    assert stream.getvalue().split("\n") == [
        "\r" + render(10, 1, 4),
        "WARNING a warning while importing",
        "\r" + render(40, 4, 4) + "\r" + render(40, 4, 4),
        "WARNING after",
        "",
    ]


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
