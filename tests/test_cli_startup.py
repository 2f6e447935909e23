"""The real ``labelgraph`` command refuses what cannot work — a bad or unreachable ``--db``, a
port out of range or in use — with one line on stderr and exit status 2, before it announces a
URL and before it creates anything."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli_process import run_labelgraph
from tests.conftest import FIXTURES, TEST_DATABASE_URL
from tests.live_server import free_port, running_labelgraph

pytestmark = pytest.mark.live


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def closed_postgres_url() -> str:
    return f"postgresql://user:secret@127.0.0.1:{free_port()}/labelgraph"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("notaurl", "unsupported database URL 'notaurl'"),
        ("mysql://root@localhost/db", "unsupported database URL 'mysql://root@localhost/db'"),
        (None, "cannot connect to the database postgresql://***@127.0.0.1:"),
    ],
)
def test_start_with_a_bad_database_is_one_line(
    tmp_path: Path, url: str | None, message: str
) -> None:
    url = url or closed_postgres_url()
    port = str(free_port())
    done = run_labelgraph("start", "p", "--init", "--db", url, "--port", port, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "ERROR labelgraph: " in line and message in line
    assert "secret" not in line
    assert "labelgraph on http" not in done.stdout + done.stderr
    assert not (tmp_path / "p").exists()


def test_port_out_of_range_is_refused(tmp_path: Path) -> None:
    done = run_labelgraph("start", "p", "--init", "--port", "99999", cwd=tmp_path)
    assert done.returncode == 2
    assert "argument --port: 99999 is not a port number (1-65535)" in done.stderr
    done = run_labelgraph("start", "p", "--init", cwd=tmp_path, env={"LABELGRAPH_PORT": "70000"})
    assert done.returncode == 2
    assert "port must be 1-65535, not 70000" in done.stderr
    assert not (tmp_path / "p").exists()


def test_port_in_use_is_reported_before_anything_starts(
    tmp_path: Path, listening_port: int
) -> None:
    done = run_labelgraph("start", "p", "--init", "--port", str(listening_port), cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert f"cannot listen on 127.0.0.1:{listening_port}: address already in use" in line
    assert done.stdout == ""
    assert not (tmp_path / "p").exists()
    multi = run_labelgraph("start-multi-session", "--port", str(listening_port), cwd=tmp_path)
    assert multi.returncode == 2
    assert "address already in use" in multi.stderr and len(multi.stderr.splitlines()) == 1


def test_restart_with_an_incompatible_label_config_does_not_start(tmp_path: Path) -> None:
    cli = FIXTURES / "cli"
    created = run_labelgraph(
        "init",
        "p",
        "--label-config",
        str(FIXTURES / "configs/sentiment.xml"),
        "--input-path",
        str(cli / "sentiment_labeled.json"),
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    config = str(cli / "sentiment_without_positive.xml")
    port = str(free_port())
    done = run_labelgraph("start", "p", "--label-config", config, "--port", port, cwd=tmp_path)
    assert done.returncode == 2
    assert "cannot initialise p: " in done.stderr and "Positive" in done.stderr
    assert "labelgraph on http" not in done.stderr


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="init and start share the SQLite project")
def test_start_applies_a_label_config_to_an_existing_project(tmp_path: Path) -> None:
    project = tmp_path / "p"
    labeled = str(FIXTURES / "cli/sentiment_labeled.json")
    sentiment = str(FIXTURES / "configs/sentiment.xml")
    created = run_labelgraph(
        "init", str(project), "--label-config", sentiment, "--input-path", labeled, cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr
    more = FIXTURES / "cli/sentiment_more_choices.xml"
    with running_labelgraph(
        "start", str(project), "--label-config", str(more), "--input-path", labeled
    ) as base:
        answer = httpx.get(base + "/api/project").json()
    assert answer["label_config_line"].count("<Choice ") == 4
    assert answer["task_count"] == 3  # the input path was not imported again
