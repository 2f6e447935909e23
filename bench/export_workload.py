"""Export benchmark: JSON, CSV, COCO, YOLO export of N completed tasks; seconds, MB/s, peak RSS.

    python bench/export_workload.py [--tasks 100000 [1000000 ...]] [--db URL]
                                    [--formats JSON CSV [COCO YOLO ...]] [--zip-levels 1 [0 6 ...]]
                                    [--stored-below 512] [--keep DIR] [--processes N]

For each size it creates a fresh project in a temporary directory (SQLite unless ``--db``). The
text formats (JSON, JSON_MIN, CSV, TSV) get a Text + Choices + Labels config and N tasks, each
with ~100 characters of text and one completion (a choice and a span); the image formats (COCO,
VOC, YOLO) get an Image + RectangleLabels config and N tasks, each a remote image URL (not
fetched: the export keeps the reference) with one completion of two rectangles carrying the
image size. Tasks are imported through the import service. Then each export runs in its own
``python`` subprocess, so that the figures are independent: the subprocess reports the export's
wall time, the zip's size, the bytes of the files inside it (uncompressed) and its peak RSS
(``VmHWM``), and the export's CPU seconds (steadier than wall time on a shared machine).
MB/s is the uncompressed output per second. A baseline subprocess that only opens
the project gives the fixed memory floor. With several sizes, the last line compares the peak
RSS of the largest export with the smallest (the target: at most 1.2x). ``--zip-levels`` runs
each export once per deflate level of the zip entries (0: stored; the server's is
``writer_base.ZIP_LEVEL``), to weigh seconds against bytes; ``--stored-below N`` sets the size
under which whole entries (YOLO's label files) are stored rather than deflated. ``--keep DIR``
makes the projects under ``DIR`` and reuses them in later runs (SQLite), to compare commits
on the same data without importing again. ``--processes N`` sets the export's worker processes
(``LABELGRAPH_EXPORT_PROCESSES``; 1 = in the exporting process): CPU seconds include the
workers', and "wrk RSS" is the largest worker's peak RSS (JSON/JSON_MIN/CSV/TSV/COCO/YOLO
exports of at least ``LABELGRAPH_EXPORT_PARALLEL_MIN`` tasks use them).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import record  # noqa: E402  (bench/, the script's own folder)

CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/>'
    '<Choice value="Neutral"/></Choices>'
    '<Labels name="ner" toName="text"><Label value="PER"/><Label value="ORG"/></Labels></View>'
)
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
]
IMAGE_CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<RectangleLabels name="box" toName="image"><Label value="Car"/><Label value="Person"/>'
    "</RectangleLabels></View>"
)
IMAGE_FORMATS = ("COCO", "VOC", "YOLO")
CHUNK = 100_000


def peak_rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_tasks(start: int, count: int, rng: random.Random) -> list[dict[str, Any]]:
    tasks = []
    for i in range(start, start + count):
        text = " ".join(rng.choice(WORDS) for _ in range(16))[:100]
        result = [
            {
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": [rng.choice(("Positive", "Negative", "Neutral"))]},
            },
            {
                "from_name": "ner",
                "to_name": "text",
                "type": "labels",
                "value": {"start": 0, "end": 5, "text": text[:5], "labels": ["PER"]},
            },
        ]
        tasks.append(
            {
                "data": {"text": text, "n": i},
                "completions": [{"result": result, "lead_time": 1.5, "created_at": 1700000000}],
            }
        )
    return tasks


def make_image_tasks(start: int, count: int, rng: random.Random) -> list[dict[str, Any]]:
    tasks = []
    for i in range(start, start + count):
        result = [
            {
                "from_name": "box",
                "to_name": "image",
                "type": "rectanglelabels",
                "original_width": 640,
                "original_height": 480,
                "value": {
                    "x": rng.uniform(0, 50),
                    "y": rng.uniform(0, 50),
                    "width": rng.uniform(5, 50),
                    "height": rng.uniform(5, 50),
                    "rectanglelabels": [label],
                },
            }
            for label in ("Car", "Person")
        ]
        tasks.append(
            {
                "data": {"image": f"https://images.example.com/set/{i}.jpg"},
                "completions": [{"result": result, "lead_time": 1.5, "created_at": 1700000000}],
            }
        )
    return tasks


def settings_for(project_dir: Path, db_url: str | None) -> Any:
    from server.settings import Settings

    return Settings.from_env({}, project_dir=str(project_dir), database_url=db_url or None)


def create_project(project_dir: Path, tasks: int, db_url: str | None, images: bool) -> float:
    from server import db
    from server.app import prepare_database
    from server.services import projects
    from server.services.imports import json_import as imports

    settings = settings_for(project_dir, db_url)
    project_id, _ = prepare_database(settings)

    def reset() -> None:
        from server.services.tasks import tasks as task_service

        task_service.delete_all_tasks(project_id)
        projects.set_label_config(project_id, IMAGE_CONFIG if images else CONFIG)

    db.with_connection(reset)
    rng = random.Random(7)
    started = time.perf_counter()
    for start in range(0, tasks, CHUNK):
        make = make_image_tasks if images else make_tasks
        batch = make(start, min(CHUNK, tasks - start), rng)
        db.with_connection(imports.import_tasks, project_id, batch)
    return time.perf_counter() - started


def child_export(
    project_dir: str,
    fmt: str,
    db_url: str | None,
    zip_level: int | None,
    stored_below: int | None = None,
    processes: int | None = None,
) -> None:
    """Runs in the subprocess: one export, figures as JSON on stdout."""
    from server.app import prepare_database
    from server.services.export import exporter as export
    from server.services.export import writer_base, zip_writer

    if zip_level is not None:
        writer_base.ZIP_LEVEL = zip_level
    if stored_below is not None:
        zip_writer.STORED_BELOW = stored_below

    settings = settings_for(Path(project_dir), db_url)
    if processes is not None:
        settings = dataclasses.replace(settings, export_processes=processes)
    project_id, _ = prepare_database(settings)
    if fmt == "BASELINE":
        print(json.dumps({"rss_mib": peak_rss_mib()}))
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    result = export.export_project(project_id, fmt, settings)
    seconds = time.perf_counter() - started
    rss = peak_rss_mib()  # before zipfile reads the zip: its ZipInfo per entry (~600 MiB for
    # YOLO's million entries) would be counted as the export's
    with zipfile.ZipFile(result.path) as archive:
        raw = sum(info.file_size for info in archive.infolist())
    result.path.unlink()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime
        + usage.ru_stime
        - cpu_before
        + workers.ru_utime
        + workers.ru_stime,
        "worker_rss_mib": workers.ru_maxrss / 1024,
        "tasks": result.task_count,
        "zip_bytes": result.size,
        "raw_bytes": raw,
        "rss_mib": rss,
    }
    print(json.dumps(figures))


def run_child(
    project_dir: Path,
    fmt: str,
    db_url: str | None,
    zip_level: int | None = None,
    stored_below: int | None = None,
    processes: int | None = None,
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(project_dir), fmt]
    if processes is not None:
        command += ["--processes", str(processes)]
    if db_url:
        command += ["--db", db_url]
    if zip_level is not None:
        command += ["--zip-level", str(zip_level)]
    if stored_below is not None:
        command += ["--stored-below", str(stored_below)]
    env = {**os.environ, "LABELGRAPH_LOG_LEVEL": "WARNING"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"export {fmt} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[100_000])
    parser.add_argument("--formats", nargs="+", default=["JSON", "CSV"])
    parser.add_argument("--db", help="PostgreSQL URL (default: a SQLite file per size)")
    parser.add_argument("--zip-levels", type=int, nargs="+", default=[None])
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="make the projects under DIR and reuse them in later runs (SQLite; for A/B runs)",
    )
    parser.add_argument("--zip-level", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--stored-below",
        type=int,
        help="entries given whole and smaller than this many bytes are stored "
        "(zip_writer.STORED_BELOW; 0 deflates them all)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        help="the export's worker processes (LABELGRAPH_EXPORT_PROCESSES; 1 = none)",
    )
    parser.add_argument(
        "--child", nargs=2, metavar=("PROJECT_DIR", "FORMAT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child_export(
            args.child[0], args.child[1], args.db, args.zip_level, args.stored_below, args.processes
        )
        return

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, database: {args.db or 'SQLite'}"
    )
    print(
        f"{'tasks':>9} {'format':>7} {'zip':>4} {'seconds':>8} {'cpu s':>6} {'MB out':>8} "
        f"{'MB/s':>7} {'zip MB':>7} {'tasks/s':>9} {'peak RSS MiB':>13} {'wrk RSS':>8}"
    )
    peaks: dict[tuple[int, str], float] = {}
    kinds = [
        (images, [f for f in args.formats if (f in IMAGE_FORMATS) == images])
        for images in (False, True)
    ]
    for size, (images, formats) in [(n, k) for n in args.tasks for k in kinds if k[1]]:
        with contextlib.ExitStack() as stack:
            kind = "image" if images else "text"
            if args.keep:  # reused when a run made it already (SQLite only)
                project_dir = Path(args.keep) / f"{kind}-{size}" / "bench_project"
                made = project_dir.is_dir()
            else:
                tmp = stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="labelgraph-export-bench-")
                )
                project_dir = Path(tmp) / "bench_project"
                made = False
            if made:
                import_note = "kept project"
            else:
                project_dir.mkdir(parents=True)
                import_seconds = create_project(project_dir, size, args.db, images)
                import_note = f"import {import_seconds:.1f}s, {size / import_seconds:,.0f} tasks/s"
            baseline = run_child(project_dir, "BASELINE", args.db)["rss_mib"]
            print(f"{size:>9} {'(' + import_note}; {kind} tasks; baseline RSS {baseline:.1f} MiB)")
            for fmt, level in [(f, z) for f in formats for z in args.zip_levels]:
                f = run_child(project_dir, fmt, args.db, level, args.stored_below, args.processes)
                mb = f["raw_bytes"] / 1e6
                shown = "dflt" if level is None else str(level)
                print(
                    f"{size:>9} {fmt:>7} {shown:>4} {f['seconds']:8.2f} {f['cpu_seconds']:6.2f} "
                    f"{mb:8.1f} "
                    f"{mb / f['seconds']:7.1f} {f['zip_bytes'] / 1e6:7.1f} "
                    f"{f['tasks'] / f['seconds']:9,.0f} {f['rss_mib']:13.1f} "
                    f"{f['worker_rss_mib']:8.1f}"
                )
                peak = max(f["rss_mib"], f["worker_rss_mib"])
                peaks[size, fmt] = max(peaks.get((size, fmt), 0.0), peak)
                if size == max(args.tasks):
                    record(f"export_{fmt.lower()}_s", f["seconds"])
    if len(args.tasks) > 1:
        small, large = min(args.tasks), max(args.tasks)
        ratios = []
        for fmt in args.formats:
            ratio = peaks[large, fmt] / peaks[small, fmt]
            ratios.append(ratio)
            verdict = "OK" if ratio <= 1.2 else "OVER TARGET"
            print(
                f"{fmt} peak RSS {large:,} vs {small:,} tasks: {peaks[large, fmt]:.1f} / "
                f"{peaks[small, fmt]:.1f} MiB = {ratio:.2f}x (target <= 1.2x): {verdict}"
            )
        record("export_rss_ratio", max(ratios))


if __name__ == "__main__":
    main()
