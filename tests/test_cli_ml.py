"""``--ml-backends URL [URL ...]`` on ``labelgraph init`` / ``start --init`` (ml-backend.md §1.2):
applied only when the project is created, names from ``NAME=URL`` or the project folder."""

import logging
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from server import cli
from server.app import create_app
from server.settings import Settings
from tests.conftest import TEST_DATABASE_URL

pytestmark = pytest.mark.skipif(
    bool(TEST_DATABASE_URL), reason="the CLI's project creation is tested on SQLite"
)


def backends_of(project: Path) -> list[dict[str, str]]:
    with TestClient(
        create_app(Settings.from_env({}, project_dir=str(project), allowed_hosts="testserver"))
    ) as client:
        return list(client.get("/api/project").json()["config"]["ml_backends"])


def test_init_adds_backends_without_asking_them(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    project = tmp_path / "cli_ml"
    urls = ["http://127.0.0.1:9/", "named=http://models.example:9090/ml/"]
    assert cli.main(["init", str(project), "--ml-backends", *urls]) == 0
    first, second = backends_of(project)
    assert first["url"] == "http://127.0.0.1:9/" and re.fullmatch(
        r"cli_ml[0-9a-f]{4}", first["name"]
    )
    assert second == {"url": "http://models.example:9090/ml/", "name": "named"}
    caplog.clear()
    assert cli.main(["init", str(project), "--ml-backends", "other=http://h:1"]) == 0
    assert "--ml-backends not applied" in caplog.text
    assert [b["name"] for b in backends_of(project)] == [first["name"], "named"]


def test_a_string_that_is_no_url_is_refused(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "bad"
    assert cli.main(["init", str(project), "--ml-backends", "localhost"]) == 2
    assert 'Specified string "localhost" doesn\'t look like URL.' in caplog.text
