"""Import pipeline and staged imports (imports.json_import, file_import, staging)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server import db
from server.db_rows import insert_rows
from server.errors import DomainError
from server.models import Completion, Prediction, Project, StagedImport, Task, Upload
from server.services import projects
from server.services.files.store import ProjectDirectoryStore
from server.services.imports import staging as import_staging
from server.services.imports.json_import import import_tasks
from server.services.imports.pipeline import CHUNK
from server.services.imports.report import Selection
from server.services.imports.staging import ImportSource, StagingPlace
from server.services.imports.staging_dir import ImportLimits, IncomingFile
from server.settings import Settings
from tests.conftest import FIXTURES, fixture_text

IMPORTS = FIXTURES / "imports"


@pytest.fixture
def place(settings: Settings, client: TestClient) -> StagingPlace:
    return import_staging.staging_place(settings)


def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return db.with_connection(fn, *args, **kwargs)


def files(*names: str, **contents: bytes) -> ImportSource:
    incoming = [IncomingFile(n, io.BytesIO((IMPORTS / n).read_bytes())) for n in names]
    incoming += [IncomingFile(n, io.BytesIO(c)) for n, c in contents.items()]
    return ImportSource(files=incoming)


def second_project() -> int:
    project, _ = projects.ensure_project("second")
    return int(project.id)


def with_text_config(project_id: int) -> None:
    projects.set_label_config(project_id, fixture_text("configs/text_classification.xml"))


def test_large_import_keeps_positions_and_counters(client: TestClient, project_id: int) -> None:
    run(with_text_config, project_id)
    items: list[dict[str, Any]] = []
    for i in range(2 * CHUNK + 7):
        if i % 3 == 0:
            items.append({"data": {"text": f"t{i}"}, "completions": [{"result": [], "n": i}]})
        elif i % 3 == 1:
            items.append({"data": {"text": f"t{i}"}, "predictions": [{"result": [], "score": 1}]})
        else:
            items.append({"text": f"t{i}"})
    result = run(import_tasks, project_id, items)
    assert len(result.task_ids) == len(items) == result.total_tasks
    assert result.completion_count == len(range(0, len(items), 3))

    def check() -> None:
        rows = list(Task.select().where(Task.project == project_id).order_by(Task.position))
        assert [r.position for r in rows] == list(range(len(items)))
        assert [r.id for r in rows] == result.task_ids
        assert [r.data["text"] for r in rows] == [f"t{i}" for i in range(len(items))]
        assert all(r.total_completions == (i % 3 == 0) for i, r in enumerate(rows))
        completions = {c.task_id: c.payload["n"] for c in Completion.select()}
        assert completions == {result.task_ids[i]: i for i in range(0, len(items), 3)}
        predicted = {p.task_id for p in Prediction.select()}
        assert predicted == {result.task_ids[i] for i in range(1, len(items), 3)}
        project = Project.get_by_id(project_id)
        assert project.task_count == len(items)
        assert project.labeled_task_count == project.completion_count == len(completions)
        assert project.prediction_count == len(predicted)

    run(check)
    preview = result.preview[0]["completions"][0]
    assert preview["n"] == 0 and isinstance(preview["id"], int)


def test_bulk_completion_import_sets_every_counter(client: TestClient, project_id: int) -> None:
    """Completions are converted once per chunk and inserted in bulk: each task's counters
    and each completion row still match what the items say, across chunk boundaries."""
    run(with_text_config, project_id)
    items: list[dict[str, Any]] = []
    for i in range(CHUNK + 5):
        completions: list[dict[str, Any]] = [{"result": [], "n": i, "created_at": 1_000 + i}]
        if i % 4 == 1:
            completions.append({"result": [], "n": i, "was_cancelled": True, "id": 99})
        if i % 4 == 2:
            completions.append({"result": [], "n": i, "skipped": True, "created_at": 5_000 + i})
        items.append({"data": {"text": f"t{i}"}, "completions": completions})
    items.append({"text": "plain"})
    result = run(import_tasks, project_id, items)
    expected_completions = sum(len(item.get("completions", [])) for item in items)
    assert result.completion_count == expected_completions

    def check() -> None:
        tasks = list(Task.select().where(Task.project == project_id).order_by(Task.position))
        for i, task in enumerate(tasks[:-1]):
            assert task.total_completions == 1 + (i % 4 in (1, 2)), i
            assert task.cancelled_completions == (i % 4 in (1, 2)), i
            assert task.is_labeled
            created = [c.created_at for c in Completion.select().where(Completion.task == task)]
            assert task.completed_at == max(created), i
            if i % 4 == 1:  # no created_at: the import's time
                assert max(created) > 1_000_000_000
            else:
                assert max(created) == (5_000 + i if i % 4 == 2 else 1_000 + i), i
        plain = tasks[-1]
        assert (plain.total_completions, plain.is_labeled, plain.completed_at) == (0, False, None)
        rows = list(Completion.select().order_by(Completion.id))
        assert len(rows) == expected_completions
        by_task = {task.id: i for i, task in enumerate(tasks)}
        for row in rows:
            i = by_task[row.task_id]
            assert row.payload["n"] == i
            assert "id" not in row.payload and "created_at" not in row.payload
            cancelled = row.payload.get("was_cancelled") or row.payload.get("skipped")
            assert row.was_cancelled == bool(cancelled)
        project = Project.get_by_id(project_id)
        assert project.completion_count == expected_completions
        assert project.labeled_task_count == len(items) - 1

    run(check)


def test_too_many_tasks_stores_nothing(client: TestClient, project_id: int) -> None:
    with pytest.raises(DomainError) as caught:
        run(import_tasks, project_id, [{"x": i} for i in range(CHUNK + 5)], max_tasks=CHUNK)
    assert caught.value.code == "too_large"
    assert run(lambda: Task.select().count()) == 0


def test_progress_and_single_assets(
    client: TestClient, project_id: int, place: StagingPlace
) -> None:
    run(with_text_config, project_id)
    seen: list[tuple[int, int, int]] = []
    result = run(
        import_staging.import_now,
        project_id,
        files("reviews.csv", "lines.txt"),
        place,
        Selection(files_as_tasks_list=False),
        lambda *state: seen.append(state),
    )
    assert result.total_tasks == 2
    assert result.selected_objects == ["TimeSeries", "Text"]
    assert result.show_files_as_tasks_list is True and result.files_as_tasks_list is False
    assert seen[-1][0] == 2 and seen[-1][1] == seen[-1][2]
    assert [p["text"] for p in result.preview] == [
        "/data/upload/6495a4-reviews.csv",
        "/data/upload/1b8e73-lines.txt",
    ]


def test_mixed_media_in_an_empty_project_is_refused(
    client: TestClient, project_id: int, place: StagingPlace
) -> None:
    with pytest.raises(DomainError) as caught:
        run(import_staging.import_now, project_id, files("red.png", **{"a.mp3": b"ID3"}), place)
    assert caught.value.message.startswith("More than one data type is presented: Audio, Image")
    assert run(lambda: Task.select().count()) == 0
    assert list(place.upload_dir.iterdir()) == []


def test_staged_imports_are_per_project(
    client: TestClient, project_id: int, place: StagingPlace
) -> None:
    other = run(second_project)
    run(with_text_config, project_id)
    run(with_text_config, other)
    first = run(import_staging.prepare, project_id, files("lines.txt", "page.html"), place)
    second = run(import_staging.prepare, other, ImportSource(tasks=[{"text": "json"}]), place)
    assert first.id != second.id
    assert first.report.total_tasks == 5 and first.report.task_ids == []
    assert first.report.formats == {".txt": 1, ".html": 1}
    assert first.report.selected_formats == [".html", ".txt"]
    assert second.report.total_tasks == 1 and second.report.formats == {}
    assert run(lambda: Task.select().count()) == 0
    # Each project sees only its own staged import.
    with pytest.raises(DomainError):
        run(import_staging.get, other, first.id)
    assert run(import_staging.get, project_id, first.id).report.total_tasks == 5
    # Read only the text file, as one task list.
    changed = run(import_staging.update, project_id, first.id, place, formats=[".txt"])
    assert changed.report.total_tasks == 4 and changed.report.selected_formats == [".txt"]
    # A change that does not check out leaves the staged import as it was.
    with pytest.raises(DomainError) as caught:
        run(import_staging.update, project_id, first.id, place, formats=[".png"])
    assert caught.value.message == "data is empty"
    assert run(import_staging.get, project_id, first.id).report.total_tasks == 4
    applied = run(import_staging.apply, project_id, first.id, place)
    assert len(applied.task_ids) == 4
    applied_other = run(import_staging.apply, other, second.id, place)
    assert len(applied_other.task_ids) == 1
    texts = run(lambda: sorted(t.data["text"] for t in Task.select()))
    assert texts == sorted(["line one", "line two", "", "line four", "json"])
    assert run(lambda: StagedImport.select().count()) == 0
    assert list(place.staging_root.iterdir()) == []
    # Both uploaded files are stored, the unselected one too.
    assert sorted(p.name for p in place.upload_dir.iterdir()) == [
        "1b8e73-lines.txt",
        "6b3d0a-page.html",
    ]
    uploads = run(lambda: sorted((u.project_id, u.name, u.size) for u in Upload.select()))
    assert uploads == [(project_id, "1b8e73-lines.txt", 29), (project_id, "6b3d0a-page.html", 91)]
    with pytest.raises(DomainError) as caught:
        run(import_staging.apply, project_id, first.id, place)
    assert caught.value.code == "not_found"


def test_staged_imports_expire(client: TestClient, project_id: int, place: StagingPlace) -> None:
    run(with_text_config, project_id)
    staged = run(import_staging.prepare, project_id, files("lines.txt"), place)
    directory = run(lambda: StagedImport.get_by_id(staged.id).directory)
    assert (place.staging_root / directory).is_dir()
    stray = place.staging_root / ("0" * 32)
    stray.mkdir()
    expired = run(import_staging.purge_expired, project_id, place.staging_root, 10**10)
    assert expired == 1
    assert not (place.staging_root / directory).exists()
    assert not stray.exists()
    with pytest.raises(DomainError):
        run(import_staging.get, project_id, staged.id)


def test_expired_import_is_not_found(
    client: TestClient, project_id: int, settings: Settings
) -> None:
    place = StagingPlace(settings.import_tmp_dir, settings.upload_dir, ImportLimits(), ttl=-1)
    staged = run(import_staging.prepare, project_id, ImportSource(tasks={"text": "x"}), place)
    with pytest.raises(DomainError) as caught:
        run(import_staging.apply, project_id, staged.id, place)
    assert caught.value.code == "not_found"


def test_exactly_one_source(client: TestClient, project_id: int, place: StagingPlace) -> None:
    with pytest.raises(DomainError) as caught:
        run(import_staging.import_now, project_id, ImportSource(), place)
    assert caught.value.message == "Give exactly one of tasks, files or url to import"
    both = ImportSource(tasks=[{"a": 1}], url="http://example.com/x.csv")
    with pytest.raises(DomainError):
        run(import_staging.import_now, project_id, both, place)


def test_staging_dir_is_inside_project(settings: Settings) -> None:
    assert settings.import_tmp_dir == Path(settings.project_dir) / "import-tmp"


def test_multi_row_inserts_keep_rows_labels_and_search_in_step(
    client: TestClient, project_id: int
) -> None:
    """Tasks, completions, label rows and search rows go in multi-row statements of a few
    hundred rows: sizes on and around those batches all land where they belong."""
    from server.models import TaskLabel
    from server.services.datamanager import search

    run(with_text_config, project_id)
    choices = ("Positive", "Negative", "Neutral")
    items: list[dict[str, Any]] = [
        {
            "data": {"text": f"word{i} common", "extra": {"deep": [f"nested{i}"]}}
            if i % 7 == 0
            else {"text": f"word{i} common"},
            "completions": [
                {
                    "result": [
                        {
                            "from_name": "sentiment",
                            "to_name": "text",
                            "type": "choices",
                            "value": {"choices": [choices[i % 3]]},
                        }
                    ]
                }
            ],
        }
        for i in range(751)
    ]
    result = run(import_tasks, project_id, items)

    def check() -> None:
        rows = list(Task.select(Task.id, Task.data).order_by(Task.position))
        assert [r.id for r in rows] == result.task_ids
        assert [r.data["text"] for r in rows] == [f"word{i} common" for i in range(751)]
        owners = {c.task_id for c in Completion.select(Completion.task)}
        assert owners == set(result.task_ids)
        labels = {
            (row.task_id, row.label)
            for row in TaskLabel.select().where(TaskLabel.project == project_id)
        }
        assert labels == {(task_id, choices[i % 3]) for i, task_id in enumerate(result.task_ids)}
        for i in (0, 249, 250, 251, 500, 749, 750):
            condition = search.matches(f"word{i}")
            assert condition is not None
            found = [r.id for r in Task.select(Task.id).where(condition)]
            assert found == [result.task_ids[i]]
        condition = search.matches("nested700")
        assert condition is not None
        assert [r.id for r in Task.select(Task.id).where(condition)] == [result.task_ids[700]]

    run(check)


def test_text_of_flat_and_nested_data() -> None:
    from server.services.datamanager.search import text_of

    assert text_of({"a": "x y", "b": "z"}) == "x y z"
    assert text_of({"a": "x", "n": 1, "d": {"b": ["y", {"c": "z"}]}}) == "x y z"
    assert text_of({}) == ""
    assert text_of(["x", {"a": "y"}]) == "x y"


class TransactionWatchingStore(ProjectDirectoryStore):
    """A shared store that notes, for each file put into it, whether the database was inside a
    transaction at that moment (a network call there would hold the write lock)."""

    shared = True

    def __init__(self) -> None:
        self.puts: list[tuple[str, str, bool]] = []

    def put(self, project: str, area: str, name: str, source: Path) -> None:
        assert source.is_file()
        self.puts.append((area, name, db.database.in_transaction()))


@pytest.mark.parametrize("staged", [False, True], ids=["direct", "prepared-then-applied"])
def test_uploads_go_to_the_shared_store_after_the_commit(
    client: TestClient, project_id: int, place: StagingPlace, staged: bool
) -> None:
    store = TransactionWatchingStore()
    shared_place = dataclasses.replace(place, files=store)
    if staged:
        prepared = run(import_staging.prepare, project_id, files("red.png"), shared_place)
        store.puts.clear()  # the staged copy, put outside any transaction too
        run(import_staging.apply, project_id, prepared.id, shared_place)
    else:
        run(import_staging.import_now, project_id, files("red.png"), shared_place)
    assert [(area, inside) for area, _, inside in store.puts] == [("upload", False)]
    assert store.puts[0][1].endswith("-red.png")
    assert run(lambda: Task.select().count()) == 1


def test_chunks_are_written_off_the_callers_thread_and_a_failed_write_stores_nothing(
    client: TestClient, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer thread inserts each chunk while the caller converts the next one (on both
    databases); a chunk that fails there fails the whole import (rolled back, error raised
    in the caller), and the connection serves the next import as usual."""
    import threading

    from server.services.imports import pipeline

    run(with_text_config, project_id)
    write = pipeline._write_chunk
    threads: list[int] = []

    def failing(*args: Any) -> Any:
        threads.append(threading.get_ident())
        if len(threads) == 2:
            raise RuntimeError("disk full")
        return write(*args)

    monkeypatch.setattr(pipeline, "_write_chunk", failing)
    items = [{"data": {"text": f"t{i}"}, "completions": [{"result": []}]} for i in range(CHUNK + 5)]
    with pytest.raises(RuntimeError, match="disk full"):
        run(import_tasks, project_id, items)
    caller = threading.get_ident()
    assert threads and all(thread != caller for thread in threads)
    counts = run(lambda: (Task.select().count(), Completion.select().count()))
    assert counts == (0, 0)
    assert run(lambda: Project.get_by_id(project_id).task_count) == 0

    monkeypatch.setattr(pipeline, "_write_chunk", write)
    result = run(import_tasks, project_id, items)
    assert len(result.task_ids) == CHUNK + 5
    assert run(lambda: (Task.select().count(), Completion.select().count())) == (
        CHUNK + 5,
        CHUNK + 5,
    )


def test_sqlite_can_write_in_the_callers_thread(
    client: TestClient, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SQLITE_WRITER_THREAD = False`` (the A/B switch) writes SQLite's chunks in the
    caller's thread, storing the same rows."""
    import threading

    from server.services.imports import pipeline

    if not db.is_sqlite():
        return
    run(with_text_config, project_id)
    write = pipeline._write_chunk
    threads: list[int] = []

    def recording(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return write(*args)

    monkeypatch.setattr(pipeline, "_write_chunk", recording)
    monkeypatch.setattr(pipeline, "SQLITE_WRITER_THREAD", False)
    items = [{"data": {"text": f"t{i}"}, "completions": [{"result": []}]} for i in range(CHUNK + 5)]
    result = run(import_tasks, project_id, items)
    caller = threading.get_ident()
    assert threads and all(thread == caller for thread in threads)
    assert len(result.task_ids) == CHUNK + 5
    assert run(lambda: (Task.select().count(), Completion.select().count())) == (
        CHUNK + 5,
        CHUNK + 5,
    )


def test_an_invalid_item_after_written_chunks_stores_nothing(
    client: TestClient, project_id: int
) -> None:
    """Chunks already handed to the writer are rolled back with the rest; the message is
    Label Studio's."""
    run(with_text_config, project_id)
    items: list[Any] = [{"text": f"t{i}"} for i in range(2 * CHUNK + 3)]
    items.append({"data": None})
    with pytest.raises(DomainError) as caught:
        run(import_tasks, project_id, items)
    assert caught.value.code == "invalid_tasks"
    assert caught.value.message.startswith(f"Error   at item {2 * CHUNK + 3}: Task is empty")
    assert run(lambda: Task.select().count()) == 0


def test_a_chunk_of_mixed_tasks_is_one_run_of_task_rows(
    client: TestClient, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain tasks between predicted ones do not split a chunk's task rows into runs (one
    statement or COPY each): one run per chunk, plain rows with the full columns' defaults."""
    from server.services.imports import pipeline

    run(with_text_config, project_id)
    insert = insert_rows  # what the pipeline imports
    task_runs: list[int] = []

    def counting(model: Any, columns: list[str], rows: list[Any], *args: Any) -> None:
        if model is Task:
            task_runs.append(len(rows))
        insert(model, columns, rows, *args)

    monkeypatch.setattr(pipeline, "insert_rows", counting)
    items: list[Any] = [
        {"data": {"text": f"t{i}"}, "predictions": [{"result": [], "score": 0.5}]}
        if i % 10 == 0
        else {"text": f"t{i}"}
        for i in range(CHUNK + 20)
    ]
    result = run(import_tasks, project_id, items)
    assert task_runs == [CHUNK, 20]

    def check() -> None:
        rows = list(Task.select().order_by(Task.position))
        assert [r.id for r in rows] == result.task_ids
        assert [r.total_predictions for r in rows] == [int(i % 10 == 0) for i in range(len(items))]
        assert [r.predictions_score for r in rows] == [
            0.5 if i % 10 == 0 else None for i in range(len(items))
        ]
        assert {(r.meta, r.is_labeled, r.completed_at, r.total_completions) for r in rows} == {
            (None, False, None, 0)
        }

    run(check)
