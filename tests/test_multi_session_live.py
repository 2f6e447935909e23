"""``labelgraph start-multi-session --root-dir DIR`` as a real process on 127.0.0.1."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from server import cli
from tests.conftest import TEST_DATABASE_URL
from tests.live_server import running_labelgraph

pytestmark = pytest.mark.live


def test_start_multi_session_serves_a_project_per_session(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with running_labelgraph("start-multi-session", "--root-dir", str(root)) as base:
        with httpx.Client(base_url=base) as first, httpx.Client(base_url=base) as second:
            mine = first.get("/api/project").json()
            assert mine["multi_session_mode"] is True
            assert first.get("/api/project").json()["project_name"] == mine["project_name"]
            theirs = second.get("/api/project").json()["project_name"]
            assert theirs != mine["project_name"]
            assert first.post("/api/project/import", json=[{"text": "t"}]).status_code == 201
            switched = second.post(
                "/api/project-switch", params={"uuid": mine["project_name"].split("/")[1]}
            )
            assert switched.json()["task_count"] == 1
        key = root / "session.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert (root / mine["project_name"] / "upload").is_dir()
        if not TEST_DATABASE_URL:
            assert (root / "labelgraph.db").is_file()


def test_single_project_commands_ignore_a_root_dir_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABELGRAPH_ROOT_DIR", str(tmp_path / "root"))
    if TEST_DATABASE_URL:
        pytest.skip("the CLI's project creation is tested on SQLite")
    assert cli.main(["init", str(tmp_path / "single")]) == 0
    assert (tmp_path / "single" / "labelgraph.db").is_file()
    assert not (tmp_path / "root").exists()
