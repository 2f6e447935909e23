"""Large JSON / JSON_MIN exports formatted by worker processes (export/parallel.py): the same
content as the in-process export, byte for byte, whatever the parts hold."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from server import db
from server.models import Task
from server.services import projects
from server.services.export import exporter as export_service
from server.services.export import parallel, writer_base, zip_writer
from server.services.imports import json_import as imports
from server.settings import Settings
from tests.export_support import run_export

CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="sent" toName="text">'
    '<Choice value="Pos"/><Choice value="Neg"/></Choices>'
    '<Labels name="ner" toName="text"><Label value="PER"/></Labels></View>'
)


@pytest.fixture
def project_id(client: Any) -> int:
    return int(client.app.state.project_id)


def completion(i: int) -> dict[str, Any]:
    return {
        "result": [
            {
                "from_name": "sent",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["Pos"]},
            },
            {
                "from_name": "ner",
                "to_name": "text",
                "type": "labels",
                "value": {"start": 0, "end": 3, "text": "tâc", "labels": ["PER"]},
            },
        ],
        "lead_time": i / 3,
        "created_at": 1_700_000_000 + i,
    }


def setup_project(project_id: int, count: int, labeled: Any = lambda i: i % 5 != 0) -> list[int]:
    def run() -> list[int]:
        projects.set_label_config(project_id, CONFIG)
        tasks = [
            {
                "data": {"text": f"tâche {i} " * 5, "n": i, "z": {"b": i, "a": [i]}},
                "meta": {"source": "bench"} if i % 2 else None,
                "completions": [completion(i), {"result": [], "was_cancelled": True}]
                if labeled(i)
                else [],
            }
            for i in range(count)
        ]
        return imports.import_tasks(project_id, tasks).task_ids

    return db.with_connection(run)


def in_parts(settings: Settings, processes: int = 2) -> Settings:
    return dataclasses.replace(settings, export_processes=processes, export_parallel_min=1)


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The jobs of the worker processes started (they run for real)."""
    started: list[dict[str, Any]] = []
    real = parallel.Worker.__init__

    def spy(self: parallel.Worker, job: dict[str, Any], log: Path) -> None:
        started.append(job)
        real(self, job, log)

    monkeypatch.setattr(parallel.Worker, "__init__", spy)
    return started


@pytest.mark.parametrize("fmt", ["JSON", "JSON_MIN", "CSV", "TSV"])
def test_parts_make_the_in_process_export(
    settings: Settings, project_id: int, fmt: str, workers: list[dict[str, Any]]
) -> None:
    task_ids = setup_project(project_id, 45)
    alone, expected = run_export(settings, project_id, fmt)
    assert not workers
    result, files = run_export(in_parts(settings, 3), project_id, fmt)
    assert len(workers) == 3
    assert sum(len(job["parts"]) for job in workers) == 3 * parallel.PARTS_PER_PROCESS
    assert files == expected
    assert result.task_count == alone.task_count == 36
    if fmt.startswith("JSON"):
        documents = json.loads(files["result.json"])
    else:
        delimiter = "," if fmt == "CSV" else "\t"
        text = files["result.csv"].decode("utf-8")
        documents = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))
        assert list(documents[0]) == ["text", "n", "z", "id", "sent", "ner"]
    assert [int(d["id"]) for d in documents] == [t for i, t in enumerate(task_ids) if i % 5]
    assert not list(settings.export_dir.glob(".*.work"))  # parts and logs deleted


def test_all_tasks_and_empty_parts(
    settings: Settings, project_id: int, workers: list[dict[str, Any]]
) -> None:
    """Parts without tasks (a gap in the ids) add no separator; unlabeled tasks are listed
    when asked for."""
    setup_project(project_id, 40, labeled=lambda i: i < 2 or i >= 38)
    for only_completed in (True, False):
        alone = export_service.export_project(
            project_id, "JSON", settings, only_completed=only_completed
        )
        split = export_service.export_project(
            project_id, "JSON", in_parts(settings), only_completed=only_completed
        )
        with zipfile.ZipFile(alone.path) as a, zipfile.ZipFile(split.path) as b:
            assert a.read("result.json") == b.read("result.json")
            documents = json.loads(b.read("result.json"))
        assert len(documents) == (4 if only_completed else 40)
        assert split.task_count == alone.task_count
    assert workers


@pytest.mark.parametrize("fmt", ["CSV", "TSV"])
def test_table_parts_with_their_own_columns(
    settings: Settings, project_id: int, fmt: str, workers: list[dict[str, Any]]
) -> None:
    """Later parts bring new columns, or find the same ones in another order: their rows are
    rewritten under the header of all columns, as the in-process writer pads them; formula
    cells stay escaped once."""

    def run() -> None:
        projects.set_label_config(project_id, CONFIG)
        tasks: list[dict[str, Any]] = []
        for i in range(48):
            data: dict[str, Any] = {"text": f"=SUM(A{i})\r\nline,two", "n": i}
            if i >= 30:  # the last parts: a new key, and the keys in another order
                data = {"extra": [i, "x"], "n": i, "text": f'say "{i}"'}
            tasks.append({"data": data, "completions": [completion(i)] if i % 3 else []})
        imports.import_tasks(project_id, tasks)

    db.with_connection(run)
    alone, expected = run_export(settings, project_id, fmt)
    result, files = run_export(in_parts(settings, 2), project_id, fmt)
    assert len(workers) == 2
    assert files == expected
    assert result.task_count == alone.task_count == 32
    delimiter = "," if fmt == "CSV" else "\t"
    text = files["result.csv"].decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    assert rows[0] == ["text", "n", "id", "sent", "ner", "extra"]
    assert rows[1][0] == "'=SUM(A1)\r\nline,two"
    assert rows[-1][0] == 'say "47"' and rows[-1][5] == "[47, 'x']"


def test_no_tasks_gives_an_empty_array(
    settings: Settings, project_id: int, workers: list[dict[str, Any]]
) -> None:
    setup_project(project_id, 6, labeled=lambda i: i == 3)

    def unlabel() -> None:
        Task.update(completed_at=None).where(Task.project == project_id).execute()

    db.with_connection(unlabel)
    _, expected = run_export(settings, project_id, "JSON")
    _, files = run_export(in_parts(settings), project_id, "JSON")
    assert files == expected
    assert files["result.json"] == b"[]"
    _, expected = run_export(settings, project_id, "CSV")
    _, files = run_export(in_parts(settings), project_id, "CSV")
    assert files == expected == {"result.csv": b"\n"}


def test_stored_entries(
    settings: Settings, project_id: int, monkeypatch: pytest.MonkeyPatch, workers: list[Any]
) -> None:
    setup_project(project_id, 30)
    monkeypatch.setattr(writer_base, "ZIP_LEVEL", 0)
    _, expected = run_export(settings, project_id, "JSON")
    result, files = run_export(in_parts(settings), project_id, "JSON")
    assert files == expected
    with zipfile.ZipFile(result.path) as archive:
        assert archive.getinfo("result.json").compress_type == zipfile.ZIP_STORED
    assert workers


def test_small_exports_and_selections_stay_in_process(
    settings: Settings, project_id: int, workers: list[dict[str, Any]]
) -> None:
    task_ids = setup_project(project_id, 20)
    few = dataclasses.replace(settings, export_processes=2, export_parallel_min=1000)
    run_export(few, project_id, "JSON")
    export_service.export_project(project_id, "JSON", in_parts(settings), task_ids=task_ids[:3])
    run_export(in_parts(settings), project_id, "CONLL2003")
    assert not workers


def test_a_failing_worker_fails_the_export(settings: Settings, project_id: int) -> None:
    setup_project(project_id, 20)
    broken = dataclasses.replace(
        in_parts(settings), database_url="sqlite:////nonexistent/folder/none.db"
    )
    with pytest.raises(RuntimeError, match="export worker failed"):
        export_service.export_project(project_id, "JSON", broken)
    assert not list(settings.export_dir.iterdir())  # no zip, no .part, no work folder


@pytest.mark.parametrize("level", [0, 1, 6])
def test_zip_entry_from_parts(tmp_path: Path, level: int) -> None:
    """Parts deflated apart (each from an empty window, ended by a sync flush) make one valid
    entry; their CRCs combine into the content's."""
    pieces = [b"", b"[", b"abc" * 50_000, b",", bytes(range(256)) * 700, b"", b"\n]"]
    parts = []
    for index, piece in enumerate(pieces):
        if index % 2:
            parts.append(zip_writer.make_part(piece, level))
            continue
        writer = zip_writer.PartWriter(tmp_path / f"p{index}", level, skip=1)
        writer.write(b"X" + piece[:1000])
        writer.write(piece[1000:])
        parts.append(writer.close())
    path = tmp_path / "out.zip"
    with zip_writer.ZipWriter(path, level) as archive:
        archive.write_bytes("before.txt", b"first")
        archive.write_parts("joined.bin", parts)
        archive.write_bytes("after.txt", b"last")
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        assert archive.testzip() is None  # every CRC checked
        assert archive.read("joined.bin") == b"".join(pieces)
        assert archive.read("after.txt") == b"last"
        method = zipfile.ZIP_DEFLATED if level else zipfile.ZIP_STORED
        assert archive.getinfo("joined.bin").compress_type == method


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("fmt", ["JSON", "CSV"])
def test_a_cancelled_export_stops_its_workers(
    settings: Settings, project_id: int, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Progress comes part by part; an export stopped there (a cancelled job) kills the
    workers and leaves nothing behind."""
    setup_project(project_id, 40)
    started: list[parallel.Worker] = []
    real = parallel.Worker.__init__

    def spy(self: parallel.Worker, job: dict[str, Any], log: Path) -> None:
        real(self, job, log)
        started.append(self)

    monkeypatch.setattr(parallel.Worker, "__init__", spy)
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        raise Cancelled

    with pytest.raises(Cancelled):
        export_service.export_project(project_id, fmt, in_parts(settings), progress=progress)
    assert len(calls) == 1 and 0 < calls[0][0] < 40
    assert len(started) == 2
    assert all(worker.process.poll() is not None for worker in started)
    assert not list(settings.export_dir.iterdir())
