"""COCO and YOLO exports formatted by worker processes in two passes (export/parallel.py): the
same zip as the in-process export, entry for entry and byte for byte, whatever the parts hold."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from server import db
from server.errors import DomainError
from server.services import projects
from server.services.export import exporter as export_service
from server.services.export import parallel, zip_writer
from server.services.imports import json_import as imports
from server.settings import Settings

CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<RectangleLabels name="box" toName="image"><Label value="Car"/><Label value="Person"/>'
    "</RectangleLabels>"
    '<PolygonLabels name="poly" toName="image"><Label value="Road"/></PolygonLabels></View>'
)


@pytest.fixture
def project_id(client: Any) -> int:
    return int(client.app.state.project_id)


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> list[parallel.Worker]:
    """The worker processes started (they run for real)."""
    started: list[parallel.Worker] = []
    real = parallel.Worker.__init__

    def spy(self: parallel.Worker, job: dict[str, Any], log: Path) -> None:
        real(self, job, log)
        started.append(self)

    monkeypatch.setattr(parallel.Worker, "__init__", spy)
    return started


def rectangle(i: int, label: str, sized: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "from_name": "box",
        "to_name": "image",
        "type": "rectanglelabels",
        "value": {
            "x": 10.5 + i % 7,
            "y": 20 + i % 3,
            "width": 30.25,
            "height": 12,
            "rectanglelabels": [label],
        },
    }
    if sized:
        entry["original_width"] = 640 + i
        entry["original_height"] = 480
    return entry


def polygon(i: int) -> dict[str, Any]:
    return {
        "from_name": "poly",
        "to_name": "image",
        "type": "polygonlabels",
        "original_width": 800,
        "original_height": 600,
        "value": {"points": [[1, 2], [30.5, 4 + i % 5], [20, 40]], "polygonlabels": ["Road"]},
    }


def task(i: int, image: str | None = None) -> dict[str, Any]:
    """Tasks of every kind: two boxes (labels beyond the config appear late, in a later part
    than the config's), a polygon first, nothing to export, cancelled, unlabeled."""
    kind = i % 6
    if kind == 5:
        return {"data": {"image": f"https://example.com/img/{i}.jpg"}}
    if kind == 4:
        result: list[dict[str, Any]] = []
    elif kind == 3:
        result = [polygon(i), rectangle(i, "Car")]
    else:
        late = "Truck" if i > 30 else "Person"
        result = [rectangle(i, "Car" if kind else late), rectangle(i + 1, late if kind else "Car")]
        if i > 50:
            result.append(rectangle(i, "Bus"))
    completions = [{"result": result, "created_at": 1_700_000_000 + i}]
    if i % 4 == 0:
        completions.append({"result": [rectangle(i, "Person")], "was_cancelled": True})
    return {
        "data": {"image": image or f"https://example.com/img/{i}.jpg"},
        "completions": completions,
    }


def setup_project(project_id: int, tasks: list[dict[str, Any]], config: str = CONFIG) -> list[int]:
    def run() -> list[int]:
        projects.set_label_config(project_id, config)
        return imports.import_tasks(project_id, tasks).task_ids

    return db.with_connection(run)


def in_parts(settings: Settings, processes: int = 2) -> Settings:
    return dataclasses.replace(settings, export_processes=processes, export_parallel_min=1)


def export(settings: Settings, project_id: int, fmt: str) -> export_service.ExportResult:
    return db.with_connection(export_service.export_project, project_id, fmt, settings)


def entries(path: Path) -> list[tuple[str, int, bytes]]:
    """The zip's entries in order (name, compression, content), every CRC checked."""
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return [
            (info.filename, info.compress_type, archive.read(info)) for info in archive.infolist()
        ]


def same_zip(a: Path, b: Path) -> None:
    """The same entries; and the same bytes but the headers' modification times."""
    assert entries(a) == entries(b)
    if a.stat().st_size == b.stat().st_size:
        with zipfile.ZipFile(a) as first, zipfile.ZipFile(b) as second:
            same_time = first.infolist()[0].date_time == second.infolist()[0].date_time
        if same_time:
            assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("fmt", ["COCO", "YOLO"])
@pytest.mark.parametrize("processes", [2, 3])
def test_parts_make_the_in_process_export(
    settings: Settings,
    project_id: int,
    fmt: str,
    processes: int,
    workers: list[parallel.Worker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=export_service.__name__)
    setup_project(project_id, [task(i) for i in range(90)])
    alone = export(settings, project_id, fmt)
    assert not workers
    split = export(in_parts(settings, processes), project_id, fmt)
    assert len(workers) == processes
    assert "in-process" not in caplog.text  # the parts made it
    same_zip(alone.path, split.path)
    assert split.task_count == alone.task_count == 60  # 90 less the unlabeled and empty ones
    if fmt == "COCO":
        with zipfile.ZipFile(split.path) as archive:
            document = json.loads(archive.read("result.json"))
        assert [c["name"] for c in document["categories"]] == [
            "Person",
            "Car",
            "Road",
            "Truck",
            "Bus",
        ]
        assert [image["id"] for image in document["images"]] == list(range(60))
        ids = [annotation["id"] for annotation in document["annotations"]]
        assert ids == list(range(len(ids))) and len(ids) > 120
    else:
        with zipfile.ZipFile(split.path) as archive:
            assert archive.read("classes.txt") == b"Car\nPerson\nTruck\nBus\n"
            assert len([n for n in archive.namelist() if n.startswith("labels/")]) == 61
    assert not list(settings.export_dir.glob(".*.work"))


def test_yolo_duplicate_names_fall_back(
    settings: Settings,
    project_id: int,
    workers: list[parallel.Worker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A label file name staged by two parts (the later task's file replaces the earlier one,
    at the earlier place): exported in-process, the same."""
    caplog.set_level(logging.INFO, logger=export_service.__name__)
    tasks = [task(i) for i in range(60)]
    tasks[55]["data"]["image"] = "https://example.com/img/1.jpg"  # part 0's image, again
    setup_project(project_id, tasks)
    alone = export(settings, project_id, "YOLO")
    split = export(in_parts(settings), project_id, "YOLO")
    assert len(workers) == 2
    assert "in-process (an image name in two parts)" in caplog.text
    same_zip(alone.path, split.path)
    with zipfile.ZipFile(split.path) as archive:
        names = archive.namelist()
        assert names.index("labels/1.txt") < names.index("labels/2.txt")
        assert archive.read("labels/1.txt").count(b"\n") == 3  # task 55's boxes


def test_yolo_name_twice_in_one_part(
    settings: Settings,
    project_id: int,
    workers: list[parallel.Worker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A label file name that comes twice within one part (written as the tasks come, the
    part is made again through the stage): the later file at the earlier place, as
    in-process, without falling back."""
    caplog.set_level(logging.INFO, logger=export_service.__name__)
    tasks = [task(i) for i in range(60)]
    tasks[2]["data"]["image"] = "https://example.com/img/1.jpg"  # task 1's image, same part
    tasks[42]["data"]["image"] = "https://example.com/img/a/43.png"  # 43.txt twice, too
    setup_project(project_id, tasks)
    alone = export(settings, project_id, "YOLO")
    split = export(in_parts(settings), project_id, "YOLO")
    assert len(workers) == 2
    assert "in-process" not in caplog.text
    same_zip(alone.path, split.path)
    with zipfile.ZipFile(split.path) as archive:
        names = archive.namelist()
        assert names.count("labels/1.txt") == names.count("labels/43.txt") == 1
        assert "labels/2.txt" not in names and "labels/42.txt" not in names
        assert names.index("labels/1.txt") < names.index("labels/3.txt")
        assert archive.read("labels/1.txt").count(b"\n") == 2  # task 2's boxes


def test_yolo_labels_outside_the_config_in_two_parts(
    settings: Settings,
    project_id: int,
    workers: list[parallel.Worker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Labels outside the config that two parts would number apart: in-process, the same."""
    caplog.set_level(logging.INFO, logger=export_service.__name__)
    tasks = [task(i) for i in range(40)]
    tasks[2]["completions"][0]["result"].append(rectangle(2, "Tram"))  # part 0: Tram
    tasks[39]["completions"][0]["result"][0] = rectangle(39, "Bike")  # last part: Truck, Bike
    setup_project(project_id, tasks)
    alone = export(settings, project_id, "YOLO")
    split = export(in_parts(settings), project_id, "YOLO")
    assert workers
    assert "in-process (labels outside the config" in caplog.text
    same_zip(alone.path, split.path)
    with zipfile.ZipFile(split.path) as archive:
        assert archive.read("classes.txt").split() == [
            b"Car",
            b"Person",
            b"Tram",
            b"Truck",
            b"Bike",
        ]


@pytest.mark.parametrize("fmt", ["COCO", "YOLO"])
def test_uploaded_images_are_copied_in_order(
    settings: Settings, project_id: int, fmt: str, workers: list[parallel.Worker]
) -> None:
    """Images the workers resolve are copied by the export's process, in task order, once."""
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    for n in range(5):
        (settings.upload_dir / f"up{n}.png").write_bytes(b"\x89PNG" + bytes([n]) * 600)
    tasks = [task(i, image=f"/data/upload/up{(7 * i) % 5}.png") for i in range(30)]
    setup_project(project_id, tasks)
    alone = export(settings, project_id, fmt)
    split = export(in_parts(settings), project_id, fmt)
    assert workers
    same_zip(alone.path, split.path)
    with zipfile.ZipFile(split.path) as archive:
        images = [n for n in archive.namelist() if n.startswith("images/") and n != "images/"]
        assert images == [f"images/up{n}.png" for n in (0, 2, 4, 1, 3)]  # tasks 0, 1, 2, 3, 9


@pytest.mark.parametrize("fmt", ["COCO", "YOLO"])
def test_a_task_that_cannot_be_exported_fails_as_in_process(
    settings: Settings, project_id: int, fmt: str, workers: list[parallel.Worker]
) -> None:
    """A worker's DomainError (a box without size whose image cannot be read) is the
    export's, as in-process: a clear conflict, not a failed worker."""
    tasks = [task(i) for i in range(30)]
    tasks[25]["completions"][0]["result"] = [rectangle(25, "Car", sized=False)]
    if fmt == "YOLO":  # YOLO needs no size: a rectangle without x
        del tasks[25]["completions"][0]["result"][0]["value"]["x"]
    setup_project(project_id, tasks)
    with pytest.raises(DomainError) as alone:
        export(settings, project_id, fmt)
    with pytest.raises(DomainError) as split:
        export(in_parts(settings), project_id, fmt)
    assert workers
    assert split.value.code == alone.value.code == "conflict"
    assert split.value.message == alone.value.message
    assert split.value.details == alone.value.details
    assert not list(settings.export_dir.iterdir())


@pytest.mark.parametrize("fmt", ["COCO", "YOLO"])
def test_a_failing_worker_fails_the_export(settings: Settings, project_id: int, fmt: str) -> None:
    setup_project(project_id, [task(i) for i in range(20)])
    broken = dataclasses.replace(
        in_parts(settings), database_url="sqlite:////nonexistent/folder/none.db"
    )
    with pytest.raises(RuntimeError, match="export worker failed"):
        export_service.export_project(project_id, fmt, broken)
    assert not list(settings.export_dir.iterdir())


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("fmt", ["COCO", "YOLO"])
def test_a_cancelled_export_stops_its_workers(
    settings: Settings, project_id: int, fmt: str, workers: list[parallel.Worker]
) -> None:
    setup_project(project_id, [task(i) for i in range(40)])
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        raise Cancelled

    with pytest.raises(Cancelled):
        db.with_connection(
            export_service.export_project, project_id, fmt, in_parts(settings), progress=progress
        )
    assert len(calls) == 1 and 0 < calls[0][0] < 40
    assert len(workers) == 2
    assert all(worker.process.poll() is not None for worker in workers)
    assert not list(settings.export_dir.iterdir())


@pytest.mark.parametrize("level", [0, 1])
def test_entries_made_apart_with_many_entries(tmp_path: Path, level: int) -> None:
    """Entries made elsewhere (entry_bytes, central_record at their final offsets) and appended
    make a valid zip, with ZIP64 end records past 65,535 entries."""
    first, second = tmp_path / "local", tmp_path / "directory"
    count = 70_000
    time, date = zip_writer.dos_time()
    path = tmp_path / "out.zip"
    with zip_writer.ZipWriter(path, level) as archive:
        archive.time, archive.date = time, date
        archive.write_bytes("before.txt", b"first")
        archive.mkdir("labels")
        base = archive.offset
        offset = 0
        with first.open("wb") as local, second.open("wb") as directory:
            for n in range(count):
                content = (b"%d 0.5 0.25 0.125 0.0625\n" % n) * (1 if n % 1000 else 40)
                data, fields = zip_writer.entry_bytes(f"labels/{n}.txt", content, level, time, date)
                local.write(data)
                directory.write(
                    zip_writer.central_record(
                        *fields, base + offset, zip_writer.FILE_MODE, time, date
                    )
                )
                offset += len(data)
        archive.append_entries(first, second, count)
        archive.write_bytes("after.txt", b"last")
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert len(names) == count + 3
        assert names[:3] == ["before.txt", "labels/", "labels/0.txt"]
        assert archive.read("labels/69999.txt") == b"69999 0.5 0.25 0.125 0.0625\n"
        assert archive.read("labels/1000.txt").count(b"\n") == 40
        assert archive.read("after.txt") == b"last"
        if level:
            assert archive.getinfo("labels/1000.txt").compress_type == zipfile.ZIP_DEFLATED
    if shutil.which("unzip"):
        checked = subprocess.run(["unzip", "-tq", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_yolo_label_files_deflated_as_the_server_process_decides(
    settings: Settings,
    project_id: int,
    workers: list[parallel.Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whole entries under STORED_BELOW are stored; the workers follow the server process's
    figure (here 0: every label file deflated)."""
    monkeypatch.setattr(zip_writer, "STORED_BELOW", 0)
    setup_project(project_id, [task(i) for i in range(30)])
    alone = export(settings, project_id, "YOLO")
    split = export(in_parts(settings), project_id, "YOLO")
    assert workers
    same_zip(alone.path, split.path)
    with zipfile.ZipFile(split.path) as archive:
        labels = [info for info in archive.infolist() if info.filename.startswith("labels/")]
        assert labels[1].compress_type == zipfile.ZIP_DEFLATED
