"""Large JSON, JSON_MIN, CSV, TSV, COCO and YOLO exports read and formatted by worker
processes, on every core.

Most of an export's time is JSON: parsing the stored texts into Python objects and
serialising them again (at 1M tasks ~5 s of CPU parsing and ~4 s formatting, against ~2 s in
SQLite). Both hold the GIL, so threads cannot share that work; processes can. The tasks' id
range is cut into parts (``PARTS_PER_PROCESS`` per process, by equal spans of ids), dealt
round-robin to ``python -m server.services.export.parallel`` worker processes (plain
subprocesses: nothing of the server's threads, connections or ``__main__`` is inherited or
re-run). A worker reads each of its parts with :func:`~server.services.export.exporter.
task_pages` and formats it with the format's own writer, whose output is deflated into a file
of its own in the export's work folder (:class:`~server.services.export.zip_writer.PartWriter`),
and reports the part on stdout (one JSON line). The server process writes the entry from those
files in id order (:meth:`ZipWriter.write_parts`), so the content is byte for byte the
in-process export's:

- JSON, JSON_MIN (one JSON array of independent elements): the parts are the array's elements,
  written as they come, with the bracket and separators between them;
- CSV, TSV: the header needs every column, so the parts are awaited; each reports its columns
  (in the order it found them), the header lists them all in the in-process writer's order,
  and a part whose columns differ from it (a later part brought new keys) is read back and its
  cells moved to their places (rare: tasks mostly share their keys).

- COCO and YOLO keep state across tasks, so they take two passes, the plan of the second sent
  on the worker's stdin once every part's first pass is reported
  (:func:`export_images_in_parts`).
  COCO's image and annotation ids run over the whole export and its categories are numbered
  in order of first appearance: the first pass spools each task's image and annotations
  without their ids (``CocoWriter.record``, labels numbered in the part) and reports the
  part's counts and labels; the server process numbers the parts from the counts before them
  and maps their labels to the export's categories; the second pass writes the part's images
  and annotations with those numbers, as parts of the ``images`` and ``annotations`` arrays.
  YOLO's one label file per image (~1M zip entries at 1M tasks): the first pass writes the
  part's files (``YoloWriter``) as finished zip entries (local header and data,
  :func:`~server.services.export.zip_writer.entry_bytes`) as the tasks come, with their
  sizes; the server process gives each part the offset its entries get in the zip, and the
  second pass writes their central-directory records there; the server process copies both
  in (a zip64 directory past 65,535 entries is the zip writer's own). A later task's file
  replaces an earlier one of the same name at the earlier place, in-process: a name twice in
  one part makes that part again through the writer's stage (names that may repeat are found
  through a bit set of the part's names); a name in two parts (looked up through the same
  bit sets, then in the parts' lists of names), or labels outside the config that two parts
  would number differently, make the export run in-process instead (:class:`Fallback`).
  Images the workers place are listed, and copied into the zip by the server process in task
  order. VOC and the other formats run in the server process.

Memory stays flat in the number of tasks: each worker streams its parts
to disk, a page at a time, and the server process copies finished parts into the zip and
deletes them. A failing worker fails the export (its stderr's last lines in the error); the
other workers are killed. A task a worker cannot export (a :class:`~server.errors.DomainError`,
e.g. a box whose image size is unknown) fails the export with that error, as in-process.
"""

from __future__ import annotations

import builtins
import contextlib
import csv
import io
import itertools
import json
import marshal
import os
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import server
from server import db
from server.errors import DomainError
from server.gc_pause import paused_gc
from server.models import COMPLETED, Task
from server.services.export import zip_writer
from server.services.export.images import YoloWriter, yolo_classes
from server.services.export.media import MediaResolver
from server.services.export.text_writers import CsvWriter, RowWriter, TextSink
from server.services.export.writer_base import BUFFER_SIZE, ExportTask, WriterContext, ZipStream
from server.services.export.zip_writer import (
    FILE_MODE,
    Part,
    PartWriter,
    ZipWriter,
    central_record,
    entry_bytes,
    make_part,
    parts_supported,
)

TABLES = ("CSV", "TSV")
IMAGES = ("COCO", "YOLO")  # formatted in two passes (see export_images_in_parts)
PARTS_PER_PROCESS = 4  # smaller parts even out ranges whose tasks are unevenly spread


@dataclass(frozen=True)
class PartDone:
    part: Part
    count: int  # tasks written
    seen: int  # tasks read
    columns: list[str]  # CSV/TSV: the part's columns, in the order of its cells


def usable(
    processes: int, total: int, minimum: int, task_ids: list[int] | None, database_url: str
) -> bool:
    """Whether an export of ``total`` tasks goes to worker processes (not a selection of
    tasks, nor a database that only this process sees)."""
    return (
        processes > 1
        and total >= max(minimum, 1)
        and task_ids is None
        and ":memory:" not in database_url
        and parts_supported()
    )


def id_ranges(project_id: int, only_completed: bool, parts: int) -> list[tuple[int, int]]:
    """``(after_id, upto_id]`` ranges that cover the project's tasks, by equal spans of ids."""
    query = Task.select(Task.id).where(Task.project == project_id)
    if only_completed:
        query = query.where(COMPLETED)
    first = query.order_by(Task.id).limit(1).scalar()
    last = query.order_by(Task.id.desc()).limit(1).scalar()
    if first is None or last is None:
        return []
    start, span = first - 1, last - first + 1
    parts = min(parts, span)
    bounds = [start + span * k // parts for k in range(parts + 1)]
    return list(itertools.pairwise(bounds))


def export_in_parts(
    *,
    zip: ZipWriter,
    entry: str,
    context: WriterContext,
    database_url: str,
    project_id: int,
    only_completed: bool,
    processes: int,
    progress: Callable[[int], None],
) -> tuple[int, int]:
    """Write the export's one entry ``entry`` from parts formatted by ``processes`` workers;
    returns the numbers of tasks written and read. ``progress`` gets the tasks read so far."""
    ranges = db.with_connection(
        id_ranges, project_id, only_completed, processes * PARTS_PER_PROCESS
    )
    parts_of = [
        [after, upto, str(context.work_dir / f"part-{index:05d}")]
        for index, (after, upto) in enumerate(ranges)
    ]
    width = min(processes, len(ranges))
    tabular = context.format in TABLES
    count = seen = 0
    workers: list[Worker] = []
    try:
        for number in range(width):
            job = {
                **_job(database_url, project_id, only_completed, context, zip.level),
                "parts": parts_of[number::width],  # part i goes to worker i % width
            }
            workers.append(Worker(job, context.work_dir / f"worker-{number}.log"))

        if tabular:
            done: list[PartDone] = []
            for index in range(len(ranges)):  # progress (and a job's cancel) part by part
                done.append(workers[index % width].next_part())
                count += done[-1].count
                seen += done[-1].seen
                progress(seen)
            zip.write_parts(entry, table_parts(done, context, zip.level))
            for worker in workers:
                worker.finish()
            return count, seen

        def parts() -> Iterator[Part]:
            nonlocal count, seen
            opened = False
            for index in range(len(ranges)):
                result = workers[index % width].next_part()
                if result.count:
                    yield make_part(b"," if opened else b"[", zip.level)
                    opened = True
                    yield result.part
                if result.part.path is not None:
                    result.part.path.unlink(missing_ok=True)
                count += result.count
                seen += result.seen
                progress(seen)
            yield make_part(b"\n]" if opened else b"[]", zip.level)

        zip.write_parts(entry, parts())
        for worker in workers:
            worker.finish()
    finally:
        for worker in workers:
            worker.kill()
    return count, seen


def _job(
    database_url: str, project_id: int, only_completed: bool, context: WriterContext, level: int
) -> dict[str, Any]:
    """What every worker's job says, whatever the format (the parts and the rest are added)."""
    return {
        "database_url": database_url,
        "project_id": project_id,
        "only_completed": only_completed,
        "include_unlabeled": context.include_unlabeled,
        "format": context.format,
        "escape_formulas": context.escape_formulas,
        "level": level,
    }


class Worker:
    """One ``python -m server.services.export.parallel`` process and its parts' reports."""

    def __init__(self, job: dict[str, Any], log: Path) -> None:
        self.log_path = log
        self.log = log.open("wb")
        root = str(Path(server.__file__).resolve().parents[1])  # where ``server`` is imported from
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.services.export.parallel"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
        )
        self.stdin = cast(IO[bytes], self.process.stdin)
        self.stdin.write(json.dumps(job).encode() + b"\n")
        if job.get("format") in IMAGES:  # the plan of the second pass follows
            self.stdin.flush()
        else:
            self.stdin.close()

    def send(self, plan: dict[str, Any]) -> None:
        """The second pass's plan (image formats)."""
        try:
            self.stdin.write(json.dumps(plan).encode() + b"\n")
            self.stdin.close()
        except OSError:  # the worker died: its report says why
            pass

    def next_report(self) -> dict[str, Any]:
        line = cast(IO[bytes], self.process.stdout).readline()
        if not line:
            self.process.wait()
            raise RuntimeError(f"export worker failed: {self.failure()}")
        report: dict[str, Any] = json.loads(line)
        error = report.get("error")
        if error is not None:  # a task the format cannot export: the in-process error
            raise DomainError(error["code"], error["message"], error["details"])
        return report

    def next_part(self) -> PartDone:
        report = self.next_report()
        part = Part(report["crc"], report["size"], report["packed"], path=Path(report["path"]))
        return PartDone(part, report["count"], report["seen"], report["columns"])

    def finish(self) -> None:
        if self.process.wait() != 0:
            raise RuntimeError(f"export worker failed: {self.failure()}")

    def failure(self) -> str:
        self.log.flush()
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) or f"exit status {self.process.returncode}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        cast(IO[bytes], self.process.stdout).close()
        with contextlib.suppress(OSError):
            self.stdin.close()
        self.log.close()


def table_parts(done: list[PartDone], context: WriterContext, level: int) -> Iterator[Part]:
    """CSV/TSV: the header of all parts' columns (in the order the in-process writer finds
    them: the parts' own, in id order), then each part's rows; a part that lacks columns or
    orders them otherwise is read back and its cells moved to their columns (rare: tasks
    mostly share their keys)."""
    columns: dict[str, int] = {}
    for result in done:
        for name in result.columns:
            columns.setdefault(name, len(columns))
    if not any(result.count for result in done):
        yield make_part(b"\n", level)
        return
    delimiter = "\t" if context.format == "TSV" else ","
    header = io.BytesIO()
    RowWriter(TextSink(header), delimiter, context.escape_formulas).writerow(list(columns))
    yield make_part(header.getvalue(), level)
    order = list(columns)
    for result in done:
        if result.count and result.columns != order:
            yield rearranged(result, columns, delimiter, level)
        elif result.count:
            yield result.part
        if result.part.path is not None:
            result.part.path.unlink(missing_ok=True)


def rearranged(result: PartDone, columns: dict[str, int], delimiter: str, level: int) -> Part:
    """A CSV/TSV part's rows with their cells at the columns' places, as a new part."""
    assert result.part.path is not None
    raw = result.part.path.with_name(result.part.path.name + ".csv")
    with result.part.path.open("rb") as packed, raw.open("wb") as plain:
        inflate = zlib.decompressobj(-15) if level else None
        while chunk := packed.read(1 << 20):
            plain.write(inflate.decompress(chunk) if inflate else chunk)
    places = [columns[name] for name in result.columns]
    target = result.part.path.with_name(result.part.path.name + ".rearranged")
    stream = PartWriter(target, level)
    # cells were escaped when the worker wrote them: they are written as they are
    writer = RowWriter(TextSink(stream), delimiter, escape_formulas=False)
    with raw.open(encoding="utf-8", newline="") as rows:
        batch: list[list[str]] = []
        for row in csv.reader(rows, delimiter=delimiter):
            cells = [""] * len(columns)
            for place, cell in zip(places, row, strict=False):
                cells[place] = cell
            batch.append(cells)
            if len(batch) == 1000:
                writer.writerows(batch)
                batch = []
        writer.writerows(batch)
    raw.unlink()
    return stream.close()


# --- COCO and YOLO: two passes --------------------------------------------------------------


class Fallback(Exception):
    """The parts cannot make the in-process export's output (YOLO: a label file name staged by
    two parts, or labels outside the config numbered otherwise by two parts): the caller
    exports in-process instead."""


def export_images_in_parts(
    *,
    zip: ZipWriter,
    context: WriterContext,
    database_url: str,
    project_id: int,
    only_completed: bool,
    processes: int,
    progress: Callable[[int], None],
) -> tuple[int, int]:
    """COCO or YOLO from parts formatted by ``processes`` workers, in two passes (see the
    module doc); returns the numbers of tasks written and read. Raises :class:`Fallback`
    when the parts cannot make the in-process output (the zip is then unfinished)."""
    ranges = db.with_connection(
        id_ranges, project_id, only_completed, processes * PARTS_PER_PROCESS
    )
    if not ranges:
        raise Fallback("no tasks")
    paths = [str(context.work_dir / f"part-{index:05d}") for index in range(len(ranges))]
    parts_of = [[after, upto, path] for (after, upto), path in zip_lists(ranges, paths)]
    width = min(processes, len(ranges))
    media = context.media
    workers: list[Worker] = []
    count = seen = 0
    try:
        for number in range(width):
            job = {
                **_job(database_url, project_id, only_completed, context, zip.level),
                "zip_time": [zip.time, zip.date],
                "stored_below": zip_writer.STORED_BELOW,  # as the server process's own entries
                "media": {
                    "upload_dir": str(media.upload_dir),
                    "work_dir": str(context.work_dir / f"media-{number}"),
                    "fetch_remote": media.fetch_remote,
                    "timeout": media.timeout,
                    "allow_private": media.allow_private,
                },
                "parts": parts_of[number::width],
            }
            workers.append(Worker(job, context.work_dir / f"worker-{number}.log"))
        firsts: list[dict[str, Any]] = []
        for index in range(len(ranges)):  # progress (and a job's cancel) part by part
            firsts.append(workers[index % width].next_report())
            count += firsts[-1]["count"]
            seen += firsts[-1]["seen"]
            progress(seen)
        if context.format == "COCO":
            _coco_from_parts(zip, context, workers, firsts)
        else:
            _yolo_from_parts(zip, context, workers, firsts, paths)
        for worker in workers:
            worker.finish()
    finally:
        for worker in workers:
            worker.kill()
    return count, seen


def _copy_media(context: WriterContext, firsts: list[dict[str, Any]]) -> None:
    """The images the parts placed, into the zip in their order (once each), as the
    in-process writer copies them task by task."""
    for report in firsts:
        with open(report["copies"], encoding="utf-8") as copies:
            for line in copies:
                name, path = json.loads(line)
                context.add_file(name, Path(path))


def _part(report: dict[str, Any]) -> Part:
    return Part(report["crc"], report["size"], report["packed"], path=Path(report["path"]))


def _coco_from_parts(
    zip: ZipWriter, context: WriterContext, workers: list[Worker], firsts: list[dict[str, Any]]
) -> None:
    """COCO: the first pass gave each part's numbers of images and annotations and its labels
    in order of appearance; the second numbers them from the parts before (categories in
    order of first appearance over the whole export, as in-process)."""
    from server.services.export.images import COCO_START, coco_categories, coco_info

    width = len(workers)
    categories: dict[str, int] = {}
    plans: list[list[dict[str, Any]]] = [[] for _ in workers]
    images = annotations = 0
    for index, report in enumerate(firsts):
        mapping = [categories.setdefault(label, len(categories)) for label in report["labels"]]
        plans[index % width].append(
            {"images_from": images, "annotations_from": annotations, "categories": mapping}
        )
        images += report["images"]
        annotations += report["annotations"]
    for worker, plan in zip_lists(workers, plans):
        worker.send({"parts": plan})
    context.mkdir("images")  # as CocoWriter: the folder, the images, then result.json
    _copy_media(context, firsts)
    level = zip.level

    def parts() -> Iterator[Part]:
        yield make_part(COCO_START, level)
        later: list[tuple[Part, int]] = []
        opened = False
        for index, first in enumerate(firsts):
            report = workers[index % width].next_report()
            if first["images"]:
                yield make_part(b"," if opened else b"[", level)
                opened = True
                yield _part(report["images"])
            Path(report["images"]["path"]).unlink(missing_ok=True)
            later.append((_part(report["annotations"]), first["annotations"]))
        yield make_part(b"\n  ]" if opened else b"[]", level)
        yield make_part(coco_categories(categories), level)
        opened = False
        for part, number in later:
            if number:
                yield make_part(b"," if opened else b"[", level)
                opened = True
                yield part
            assert part.path is not None
            part.path.unlink(missing_ok=True)
        yield make_part((b"\n  ]" if opened else b"[]") + coco_info(), level)

    zip.write_parts("result.json", parts())


def _yolo_from_parts(
    zip: ZipWriter,
    context: WriterContext,
    workers: list[Worker],
    firsts: list[dict[str, Any]],
    paths: list[str],
) -> None:
    """YOLO: the first pass made each part's label files as zip entries (local headers and
    data) and gave their bytes; the second makes their central-directory records at the
    offsets they get here, after checking that no earlier part staged the same names."""
    from server.services.export.images import yolo_classes, yolo_finish

    width = len(workers)
    classes = yolo_classes(context.config)
    known = len(classes)
    for report in firsts:
        for label in report["classes"]:
            classes.setdefault(label, len(classes))
    extra = list(classes)[known:]
    for report in firsts:  # a part numbers its own new labels from the config's
        if report["classes"] != extra[: len(report["classes"])]:
            raise Fallback("labels outside the config, numbered otherwise by the parts")
    context.mkdir("images")  # as YoloWriter: the folder, the images, then labels/
    _copy_media(context, firsts)
    context.mkdir("labels")
    plans: list[list[dict[str, Any]]] = [[] for _ in workers]
    offset = zip.offset
    for index, report in enumerate(firsts):
        earlier = paths[:index]
        plans[index % width].append({"offset": offset, "earlier": earlier})
        offset += report["local_size"]
    for worker, plan in zip_lists(workers, plans):
        worker.send({"parts": plan})
    seconds = [workers[index % width].next_report() for index in range(len(firsts))]
    if any(report["duplicate"] for report in seconds):
        raise Fallback("an image name in two parts")
    for first, second in zip_lists(firsts, seconds):
        zip.append_entries(Path(first["local"]), Path(second["directory"]), first["entries"])
        Path(first["local"]).unlink(missing_ok=True)
    yolo_finish(context, classes)


def zip_lists(first: list[Any], second: list[Any]) -> Iterator[tuple[Any, Any]]:
    """``zip(first, second, strict=True)`` (the builtin's name is taken by the zip writers)."""
    return builtins.zip(first, second, strict=True)


# --- the worker process -------------------------------------------------------------------


class _PartContext(WriterContext):
    stream: Any = None

    def open(self, name: str) -> ZipStream:
        return cast(ZipStream, self.stream)


def run_parts(job: dict[str, Any], out: IO[str]) -> None:
    """In a worker: format each of ``job``'s id ranges into its part file, reported on ``out``."""
    from server.services.export.exporter import WRITERS, task_pages
    from server.services.projects import get_project, parsed_config

    db.connect(job["database_url"], pool_size=2)
    config = db.with_connection(lambda: parsed_config(get_project(job["project_id"])))
    writer_class = WRITERS[job["format"]]
    tabular = job["format"] in TABLES
    with paused_gc():
        for after_id, upto_id, path in job["parts"]:
            # the JSON writers open their entry and write "[" first: the part leaves that out
            stream = PartWriter(Path(path), job["level"], skip=0 if tabular else 1)
            work_dir = Path(path + ".d")
            work_dir.mkdir()
            context = _PartContext(
                zip=cast(ZipWriter, None),  # these formats' writers only open their one entry
                config=config,
                work_dir=work_dir,
                media=cast(MediaResolver, None),
                format=job["format"],
                include_unlabeled=job["include_unlabeled"],
                escape_formulas=job["escape_formulas"],
            )
            context.stream = stream
            count = seen = 0
            writer = writer_class(context)
            pages = task_pages(
                job["project_id"], job["only_completed"], config, after_id=after_id, upto_id=upto_id
            )
            for page in pages:
                count += writer.add_page(page)
                seen += len(page)
            columns: list[str] = []
            if isinstance(writer, CsvWriter):  # the rows without the header
                writer.spool.close()
                if writer.rows:
                    writer.write_rows(stream)
                columns = list(writer.columns)
            part = stream.close()  # JSON: the array's elements, without its closing "\n]"
            shutil.rmtree(work_dir, ignore_errors=True)
            report = {
                "path": path,
                "crc": part.crc,
                "size": part.size,
                "packed": part.packed,
                "count": count,
                "seen": seen,
                "columns": columns,
            }
            out.write(json.dumps(report) + "\n")
            out.flush()


class _ImagePartContext(WriterContext):
    """A worker's context for COCO/YOLO: folders are the parent's to make, and the images to
    copy are listed (in order, once each) for the parent to copy."""

    copies: Any = None
    copied: Any = None

    def mkdir(self, name: str) -> None:
        return None

    def add_file(self, name: str, path: Path) -> None:
        if name not in self.copied:
            self.copied.add(name)
            self.copies.write(json.dumps([name, str(path)]) + "\n")


# The names of a YOLO part's entries, as a bit set of their CRC-32s (1 MiB, whatever the number
# of names): a part's names are looked up in earlier parts only when their bits are set there,
# and among its own only when their bits were set already.
NAME_BITS = 1 << 23


def run_image_parts(job: dict[str, Any], plans: IO[str], out: IO[str]) -> None:
    """In a worker, COCO or YOLO: the first pass over each of ``job``'s id ranges, reported on
    ``out``; then, once the plan of the second pass comes on ``plans``, the second."""
    from server.services.export.exporter import task_pages
    from server.services.projects import get_project, parsed_config

    db.connect(job["database_url"], pool_size=2)
    config = db.with_connection(lambda: parsed_config(get_project(job["project_id"])))
    options = job["media"]
    media = MediaResolver(
        upload_dir=Path(options["upload_dir"]),
        work_dir=Path(options["work_dir"]),
        fetch_remote=options["fetch_remote"],
        timeout=options["timeout"],
        allow_private=options["allow_private"],
    )
    coco = job["format"] == "COCO"
    zip_writer.STORED_BELOW = job["stored_below"]
    with paused_gc():
        for after_id, upto_id, path in job["parts"]:
            work_dir = Path(path + ".d")
            work_dir.mkdir()
            context = _ImagePartContext(
                zip=cast(ZipWriter, None),
                config=config,
                work_dir=work_dir,
                media=media,
                format=job["format"],
                include_unlabeled=job["include_unlabeled"],
                escape_formulas=job["escape_formulas"],
            )
            context.copied = set()
            copies = Path(path + ".copies")
            with copies.open("w", encoding="utf-8") as context.copies:

                def pages(after_id: int = after_id, upto_id: int = upto_id) -> Iterator[Any]:
                    return task_pages(
                        job["project_id"],
                        job["only_completed"],
                        config,
                        after_id=after_id,
                        upto_id=upto_id,
                    )

                if coco:
                    report = _coco_first(context, pages(), path)
                else:
                    report = _yolo_first(context, pages, path, job["level"], job["zip_time"])
            report["copies"] = str(copies)
            out.write(json.dumps(report) + "\n")
            out.flush()
        line = plans.readline()
        if not line:  # the parent gave up
            return
        plan = json.loads(line)
        for (_, _, path), step in builtins.zip(job["parts"], plan["parts"], strict=True):
            if coco:
                report = _coco_second(path, step, job["level"])
            else:
                report = _yolo_second(path, step, job["zip_time"])
            out.write(json.dumps(report) + "\n")
            out.flush()


def _dump(value: Any, spool: IO[bytes]) -> None:
    """``value`` (bytes, numbers, tuples, lists) into ``spool``: its size, then its marshal
    (``marshal.load`` from a file reads it a few bytes at a time: ~10x slower)."""
    data = marshal.dumps(value)
    spool.write(len(data).to_bytes(8, "little") + data)


def _load(spool: IO[bytes]) -> Any:
    """The next value :func:`_dump` wrote to ``spool``; None at its end."""
    size = spool.read(8)
    if not size:
        return None
    return marshal.loads(spool.read(int.from_bytes(size, "little")))


def _coco_first(
    context: WriterContext, pages: Iterator[list[ExportTask]], path: str
) -> dict[str, Any]:
    """Each task's image and annotations without their ids (``CocoWriter.record``), a page at
    a time into ``<path>.records`` (labels by their number in the part)."""
    from server.services.export.images import CocoWriter

    writer = CocoWriter(context)
    labels: dict[str, int] = {}
    count = seen = annotations = 0
    with open(path + ".records", "wb", buffering=BUFFER_SIZE) as spool:
        for page in pages:
            seen += len(page)
            records = []
            for task in page:
                record = writer.record(task)
                if record is None:
                    continue
                image, found = record
                numbered = [(labels.setdefault(label, len(labels)), rest) for label, rest in found]
                records.append((image, numbered))
                annotations += len(found)
            if records:
                count += len(records)
                _dump(records, spool)
    context.close_all()
    return {
        "count": count,
        "seen": seen,
        "images": count,
        "annotations": annotations,
        "labels": list(labels),
    }


def _coco_second(path: str, step: dict[str, Any], level: int) -> dict[str, Any]:
    """The part's images and annotations numbered from ``step``'s, as two parts of
    result.json (each element after a separator; the first one's is left out)."""
    from server.services.export.images import COCO_SEPARATOR, coco_annotation, coco_image

    images = PartWriter(Path(path + ".images"), level, skip=1)
    annotations = PartWriter(Path(path + ".annotations"), level, skip=1)
    image_id = step["images_from"]
    ident = step["annotations_from"]
    mapping = step["categories"]
    with open(path + ".records", "rb") as spool:
        while True:
            records = _load(spool)
            if records is None:
                break
            image_texts: list[bytes] = []
            annotation_texts: list[bytes] = []
            for record in records:
                image_texts.append(COCO_SEPARATOR + coco_image(record, image_id))
                for category, rest in record[1]:
                    annotation_texts.append(
                        COCO_SEPARATOR + coco_annotation(rest, ident, image_id, mapping[category])
                    )
                    ident += 1
                image_id += 1
            images.write(b"".join(image_texts))
            annotations.write(b"".join(annotation_texts))
    Path(path + ".records").unlink()
    return {"images": _report(images.close()), "annotations": _report(annotations.close())}


def _report(part: Part) -> dict[str, Any]:
    return {"path": str(part.path), "crc": part.crc, "size": part.size, "packed": part.packed}


class _TakenYoloWriter(YoloWriter):
    """A :class:`YoloWriter` whose files are taken from ``pending`` after each page by
    :func:`_yolo_first` instead of staged."""

    def flush_staged(self) -> None:
        return None


def _yolo_first(
    context: WriterContext,
    pages: Callable[[], Iterator[list[ExportTask]]],
    path: str,
    level: int,
    zip_time: list[int],
) -> dict[str, Any]:
    """The part's label files written as zip entries (local header and data) to
    ``<path>.local`` as the tasks come, their central-directory fields but the offset to
    ``<path>.records``, their names to ``<path>.names`` and their bits to ``<path>.bits``.

    A name that comes twice in the part (its file replaces the earlier one, at the earlier
    place) is looked for only among the names whose bit was set already (a few hundred in
    125,000); when one does, the part is made again through the writer's stage
    (:func:`_yolo_first_staged`). Staging every file in SQLite and reading them back cost
    ~3 us a file."""
    writer = _TakenYoloWriter(context)
    writer.stage.close()  # not used
    (context.work_dir / "staged.sqlite").unlink()
    bits = bytearray(NAME_BITS // 8)
    twice: set[int] = set()  # bits set twice: the marks of names that may come twice
    count = seen = offset = entries = 0
    time, date = zip_time
    with (
        open(path + ".local", "wb", buffering=BUFFER_SIZE) as local,
        open(path + ".records", "wb", buffering=BUFFER_SIZE) as spool,
        open(path + ".names", "wb", buffering=BUFFER_SIZE) as names,
    ):
        for page in pages():
            count += writer.add_page(page)
            seen += len(page)
            batch: list[tuple[Any, ...]] = []
            for name, content in writer.pending:
                data, fields = entry_bytes(f"labels/{name}", content, level, time, date)
                local.write(data)
                batch.append((*fields, offset))
                offset += len(data)
                mark = zlib.crc32(fields[0]) % NAME_BITS
                if bits[mark >> 3] & (1 << (mark & 7)):
                    twice.add(mark)
                bits[mark >> 3] |= 1 << (mark & 7)
            writer.pending = []
            if batch:
                _dump(batch, spool)
                names.write(b"".join([record[0] + b"\x00" for record in batch]))
                entries += len(batch)
    if twice and _repeated(path, twice):
        return _yolo_first_staged(context, pages(), path, level, zip_time)
    Path(path + ".bits").write_bytes(bits)
    return {
        "count": count,
        "seen": seen,
        "classes": list(writer.classes)[len(yolo_classes(context.config)) :],
        "local": path + ".local",
        "local_size": offset,
        "entries": entries,
    }


def _part_names(path: str) -> Iterator[list[bytes]]:
    """The encoded entry names in ``<path>.names`` (each ended by a NUL, which names never
    hold: ``staged_name``), a chunk at a time."""
    with open(path + ".names", "rb") as names:
        rest = b""
        while chunk := names.read(BUFFER_SIZE):
            found = (rest + chunk).split(b"\x00")
            rest = found.pop()
            yield found


def _repeated(path: str, marks: set[int]) -> bool:
    """Whether a name comes twice in the part ``path`` (only names with these ``marks`` can)."""
    met: set[bytes] = set()
    for chunk in _part_names(path):
        for name in chunk:
            if zlib.crc32(name) % NAME_BITS in marks:
                if name in met:
                    return True
                met.add(name)
    return False


def _yolo_first_staged(
    context: WriterContext,
    pages: Iterator[list[ExportTask]],
    path: str,
    level: int,
    zip_time: list[int],
) -> dict[str, Any]:
    """:func:`_yolo_first` for a part where a name comes twice: its label files staged by
    ``YoloWriter`` (a later file replaces the earlier one, at its place), then written."""
    context.work_dir = Path(path + ".staged")
    context.work_dir.mkdir()
    writer = YoloWriter(context)
    count = seen = 0
    for page in pages:
        count += writer.add_page(page)
        seen += len(page)
    writer.flush_staged()
    bits = bytearray(NAME_BITS // 8)
    offset = entries = 0
    time, date = zip_time
    with (
        open(path + ".local", "wb", buffering=BUFFER_SIZE) as local,
        open(path + ".records", "wb", buffering=BUFFER_SIZE) as spool,
        open(path + ".names", "wb", buffering=BUFFER_SIZE) as names,
    ):
        batch: list[tuple[Any, ...]] = []
        rows = writer.stage.execute("SELECT name, content FROM staged ORDER BY rowid")
        for name, content in rows:
            data, fields = entry_bytes(f"labels/{name}", content, level, time, date)
            local.write(data)
            batch.append((*fields, offset))
            offset += len(data)
            names.write(fields[0] + b"\x00")
            mark = zlib.crc32(fields[0]) % NAME_BITS
            bits[mark >> 3] |= 1 << (mark & 7)
            if len(batch) == 5000:
                _dump(batch, spool)
                batch = []
            entries += 1
        if batch:
            _dump(batch, spool)
    writer.stage.close()
    Path(path + ".bits").write_bytes(bits)
    return {
        "count": count,
        "seen": seen,
        "classes": list(writer.classes)[len(yolo_classes(context.config)) :],
        "local": path + ".local",
        "local_size": offset,
        "entries": entries,
    }


def _staged_earlier(path: str, earlier: list[str]) -> bool:
    """Whether one of the names of the part ``path`` is one of an ``earlier`` part's: only
    the names whose bit is set in an earlier part's set are looked for in their names."""
    union = 0
    for other in earlier:
        union |= int.from_bytes(Path(other + ".bits").read_bytes(), "little")
    bits = union.to_bytes(NAME_BITS // 8, "little")
    candidates: set[bytes] = set()
    for chunk in _part_names(path):
        for name in chunk:
            mark = zlib.crc32(name) % NAME_BITS
            if bits[mark >> 3] & (1 << (mark & 7)):
                candidates.add(name)
    if candidates:
        for other in earlier:
            for chunk in _part_names(other):
                if not candidates.isdisjoint(chunk):
                    return True
    return False


def _yolo_second(path: str, step: dict[str, Any], zip_time: list[int]) -> dict[str, Any]:
    """The part's central-directory records at its entries' offsets in the zip, unless an
    earlier part staged one of its names (``duplicate``: the parent exports in-process)."""
    if step["earlier"] and _staged_earlier(path, step["earlier"]):
        return {"duplicate": True}
    time, date = zip_time
    base = step["offset"]
    directory = Path(path + ".directory")
    with (
        open(path + ".records", "rb") as spool,
        directory.open("wb", buffering=BUFFER_SIZE) as out,
    ):
        while True:
            batch = _load(spool)
            if batch is None:
                break
            out.write(
                b"".join(
                    central_record(
                        encoded, flags, method, crc, packed, size, base + at, FILE_MODE, time, date
                    )
                    for encoded, flags, method, crc, packed, size, at in batch
                )
            )
    return {"duplicate": False, "directory": str(directory)}


def main() -> None:
    job = json.loads(sys.stdin.readline())
    try:
        if job["format"] in IMAGES:
            run_image_parts(job, sys.stdin, sys.stdout)
        else:
            run_parts(job, sys.stdout)
    except DomainError as error:  # reported as it is: the parent raises it again
        report = {"error": {"code": error.code, "message": error.message, "details": error.details}}
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()
        sys.exit(1)


if __name__ == "__main__":
    main()
