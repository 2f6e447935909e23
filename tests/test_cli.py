import logging
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server import cli
from server.app import create_app
from server.settings import Settings
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


def project_of(directory: Path) -> dict[str, Any]:
    settings = Settings.from_env({}, project_dir=str(directory), allowed_hosts="testserver")
    with TestClient(create_app(settings)) as client:
        return dict(client.get("/api/project").json())


def test_label_config_and_input_path_on_an_existing_project(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    project = tmp_path / "p"
    labeled = str(FIXTURES / "cli/sentiment_labeled.json")
    sentiment = str(FIXTURES / "configs/sentiment.xml")
    args = ["init", str(project), "--label-config", sentiment, "--input-path", labeled]
    assert cli.main(args) == 0
    caplog.clear()
    assert cli.main(args) == 0  # the same flags again: nothing changes, nothing is duplicated
    assert "labeling config from" in caplog.text and "unchanged" in caplog.text
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert f"already has 3 tasks: --input-path {labeled} not imported" in warning.getMessage()
    assert project_of(project)["task_count"] == 3
    more = str(FIXTURES / "cli/sentiment_more_choices.xml")
    assert cli.main(["init", str(project), "--label-config", more]) == 0
    assert 'value="Mixed"' in project_of(project)["label_config_line"]
    caplog.clear()
    fewer = str(FIXTURES / "cli/sentiment_without_positive.xml")
    assert cli.main(["init", str(project), "--label-config", fewer]) == 2
    assert "cannot initialise" in caplog.text and "Positive" in caplog.text
    assert 'value="Mixed"' in project_of(project)["label_config_line"]  # kept


def test_input_path_fills_an_existing_empty_project(tmp_path: Path) -> None:
    project = tmp_path / "p"
    assert cli.main(["init", str(project)]) == 0
    sentiment = str(FIXTURES / "configs/sentiment.xml")
    labeled = str(FIXTURES / "cli/sentiment_labeled.json")
    args = ["init", str(project), "--label-config", sentiment, "--input-path", labeled]
    assert cli.main(args) == 0
    assert project_of(project)["task_count"] == 3


def test_ml_backends_for_an_existing_project_are_a_warning(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    assert cli.main(["init", str(tmp_path / "p")]) == 0
    assert cli.main(["init", str(tmp_path / "p"), "--ml-backends", "http://127.0.0.1:9"]) == 0
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "--ml-backends not applied" in warning.getMessage()


def test_version(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"labelgraph {metadata.version('labelgraph')}\n"


def test_project_dir_from_the_environment(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("LABELGRAPH_PROJECT_DIR", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli.main(["init"])
    assert exc.value.code == 2
    assert "give PROJECT_DIR or set LABELGRAPH_PROJECT_DIR" in capsys.readouterr().err
    monkeypatch.setenv("LABELGRAPH_PROJECT_DIR", str(tmp_path / "from_env"))
    assert cli.main(["init"]) == 0
    assert (tmp_path / "from_env" / "labelgraph.db").is_file()
    assert cli.main(["import", str(FIXTURES / "imports/lines.txt"), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("imported 4 tasks")
    out = tmp_path / "all.zip"
    assert cli.main(["export", "--format", "csv", "--all-tasks", "-o", str(out)]) == 0
    assert out.is_file()


def test_root_dir_from_the_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LABELGRAPH_ROOT_DIR", str(tmp_path / "root"))
    args = cli._parser().parse_args(["start-multi-session"])
    assert cli._settings(args).root_dir == str(tmp_path / "root")
    args = cli._parser().parse_args(["start-multi-session", "--root-dir", str(tmp_path)])
    assert cli._settings(args).root_dir == str(tmp_path)


@pytest.mark.parametrize("command", ["init", "export", "import"])
def test_bad_database_url_is_one_error(tmp_path: Path, caplog, command: str) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "p"
    if command != "init":
        assert cli.main(["init", str(project)]) == 0
    caplog.clear()
    extra = {"init": [], "export": ["-f", "JSON"], "import": [str(FIXTURES / "imports/lines.txt")]}
    argv = [command, str(project), *extra[command], "--db", "mysql://root@localhost/db"]
    assert cli.main(argv) == 2
    (record,) = caplog.records
    assert record.getMessage() == (
        "unsupported database URL 'mysql://root@localhost/db': use sqlite:///FILE or postgresql://…"
    )
    assert record.exc_info is None
    assert command != "init" or not project.exists()
