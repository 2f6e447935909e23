import logging
from pathlib import Path

import pytest

from server import cli
from tests.conftest import FIXTURES, TEST_DATABASE_URL

pytestmark = pytest.mark.skipif(
    bool(TEST_DATABASE_URL), reason="the CLI's project creation is tested on SQLite"
)


def test_init_creates_project_with_config_and_tasks(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    project = tmp_path / "cli_project"
    code = cli.main(
        [
            "init",
            str(project),
            "--label-config",
            str(FIXTURES / "configs/image_bbox.xml"),
            "--input-path",
            str(FIXTURES / "tasks/image_bbox.json"),
        ]
    )
    assert code == 0
    assert (project / "labelgraph.db").is_file() and (project / "upload").is_dir()
    assert "imported 3 tasks" in caplog.text
    caplog.clear()
    assert cli.main(["init", str(project)]) == 0
    assert "already exists: keeping its data" in caplog.text


def test_start_without_project_refuses(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    assert cli.main(["start", str(tmp_path / "missing")]) == 2
    assert "does not exist" in caplog.text


def test_bad_label_config_is_reported(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.xml"
    bad.write_text("<View><Text></View>")
    assert cli.main(["init", str(tmp_path / "p"), "--label-config", str(bad)]) == 2
    assert "cannot initialise" in caplog.text


def test_bad_setting_exits_with_usage(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["init", str(tmp_path / "p"), "--sampling", "best"])
    assert exc.value.code == 2
