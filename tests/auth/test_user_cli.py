"""``labelgraph user`` and ``labelgraph token``: the token is printed once, only its hash
kept; passwords come from getpass or stdin, never from the command line."""

from __future__ import annotations

import io
import logging
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


def run(args: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli.main(args)


def test_users_and_tokens_from_the_command_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    project = tmp_path / "p"
    assert cli.main(["init", str(project)]) == 0
    where = ["--project-dir", str(project)]
    assert (
        run(
            ["user", "add", "alice", "--role", "admin", "--password-stdin", *where],
            monkeypatch,
            "a long password\n",
        )
        == 0
    )
    assert "user alice (admin) created" in caplog.text
    capsys.readouterr()
    assert run(["token", "create", "alice", "--expires", "7", *where], monkeypatch) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("lg_") and len(token) > 40
    assert run(["token", "list", *where], monkeypatch) == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and token not in listing and token[:9] in listing

    settings = Settings.from_env({}, project_dir=str(project), allowed_hosts="testserver")
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/project").status_code == 401
        answer = client.get("/api/project", headers={"Authorization": f"Token {token}"})
        assert answer.status_code == 200
    assert (
        run(["user", "add", "bob", "--password-stdin", *where], monkeypatch, "another pw 1\n") == 0
    )
    assert run(["token", "create", "bob", *where], monkeypatch) == 0
    bob_token = capsys.readouterr().out.strip()
    assert run(["user", "disable", "bob", *where], monkeypatch) == 0
    assert "user bob disabled" in caplog.text
    assert run(["user", "list", *where], monkeypatch) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(r[1], r[-1]) for r in rows] == [("alice", "enabled"), ("bob", "disabled")]
    with TestClient(create_app(settings)) as client:
        answer = client.get("/api/project", headers={"Authorization": f"Token {bob_token}"})
        assert answer.status_code == 401
    assert run(["user", "disable", "alice", *where], monkeypatch) == 2  # the last admin
    assert "last enabled admin" in caplog.text
    assert run(["user", "enable", "bob", *where], monkeypatch) == 0
    with TestClient(create_app(settings)) as client:
        answer = client.get("/api/project", headers={"Authorization": f"Token {bob_token}"})
        assert answer.status_code == 200
    assert run(["token", "revoke", "1", *where], monkeypatch) == 0
    with TestClient(create_app(settings)) as client:
        answer = client.get("/api/project", headers={"Authorization": f"Token {token}"})
        assert answer.status_code == 401
    assert token not in caplog.text and "a long password" not in caplog.text


def test_bad_input_is_one_line_and_status_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    project = tmp_path / "p"
    assert cli.main(["init", str(project)]) == 0
    where = ["--project-dir", str(project)]
    assert run(["user", "add", "bob", "--password-stdin", *where], monkeypatch, "short\n") == 2
    assert "at least 8 characters" in caplog.text
    assert run(["token", "create", "nobody", *where], monkeypatch) == 2
    assert "User nobody not found" in caplog.text
    assert run(["token", "revoke", "99", *where], monkeypatch) == 2
    assert run(["user", "list", "--project-dir", str(tmp_path / "missing")], monkeypatch) == 2


def test_the_password_is_asked_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    project = tmp_path / "p"
    assert cli.main(["init", str(project)]) == 0
    answers = iter(["first password", "other password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert cli.main(["user", "add", "carol", "--project-dir", str(project)]) == 2
    assert "the passwords differ" in caplog.text
