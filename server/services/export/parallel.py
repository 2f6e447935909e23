"""Large JSON, JSON_MIN, CSV and TSV exports read and formatted by worker processes, on every
core.

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

The other formats keep state across tasks (COCO's ids, VOC/YOLO's files per image) and run
in the server process. Memory stays flat in the number of tasks: each worker streams its parts
to disk, a page at a time, and the server process copies finished parts into the zip and
deletes them. A failing worker fails the export (its stderr's last lines in the error); the
other workers are killed.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
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
from server.gc_pause import paused_gc
from server.models import COMPLETED, Task
from server.services.export.media import MediaResolver
from server.services.export.text_writers import CsvWriter, RowWriter, TextSink
from server.services.export.writer_base import WriterContext, ZipStream
from server.services.export.zip_writer import (
    Part,
    PartWriter,
    ZipWriter,
    make_part,
    parts_supported,
)

TABLES = ("CSV", "TSV")
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
                "database_url": database_url,
                "project_id": project_id,
                "only_completed": only_completed,
                "include_unlabeled": context.include_unlabeled,
                "format": context.format,
                "escape_formulas": context.escape_formulas,
                "level": zip.level,
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
        stdin = cast(IO[bytes], self.process.stdin)
        stdin.write(json.dumps(job).encode())
        stdin.close()

    def next_part(self) -> PartDone:
        line = cast(IO[bytes], self.process.stdout).readline()
        if not line:
            self.process.wait()
            raise RuntimeError(f"export worker failed: {self.failure()}")
        report = json.loads(line)
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


if __name__ == "__main__":
    run_parts(json.loads(sys.stdin.read()), sys.stdout)
