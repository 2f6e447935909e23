"""REST workload benchmark: import and request latencies of a real labelgraph server.

For every size it starts a fresh server process on a fresh project (``labelgraph start
<tmp>/bench_project --init``), sets a Text + Choices labeling config, imports N tasks in one
``POST /api/project/import`` (chunks of 100,000 above that), then times, over one keep-alive
HTTP connection, the Label Studio routes a labeling session uses:

* ``GET /api/tasks?page=1&page_size=10`` and the last page,
* ``GET /api/tasks/<id>`` (random ids),
* ``POST /api/tasks/<id>/completions`` (each to a different task),
* ``GET /api/project/next`` with the project's sampling, then with each of the four modes
  (switched with ``PATCH /api/project``).

It prints a table per size, a summary across sizes with the targets, and the server's peak
RSS (``VmHWM``). Latencies are measured on the client (they include the client's own
overhead; ``GET /api/health`` is printed as a floor for comparison). Run from the repository
root with the project's venv::

    python bench/rest_workload.py --tasks 10000 100000 [--with-1m] [--db URL]

``--db postgresql://…`` runs every size against that database (its project is emptied with
``DELETE /api/tasks`` first). The script makes no assertions: it only reports figures.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
IMPORT_CHUNK = 100_000
ONE_MILLION = 1_000_000
STARTUP_TIMEOUT = 60.0
IMPORT_TIMEOUT = 1800.0
REQUEST_TIMEOUT = 60.0
SEED = 20240901

LABEL_CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text">'
    '<Choice value="Positive"/><Choice value="Negative"/></Choices></View>'
)
CHOICE_RESULT = [
    {
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": ["Positive"]},
    }
]
COMPLETION_BODY = json.dumps({"result": CHOICE_RESULT, "lead_time": 1.2}).encode()
SAMPLING_MODES = ("sequential", "uniform", "prediction-score-min", "prediction-score-max")
WORDS = (
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "label", "studio",
    "task", "text", "sentiment", "review", "product", "service", "great", "terrible",
    "fine", "okay", "would", "buy", "again", "never", "slow", "fast", "delivery",
)  # fmt: skip

# Targets: import in tasks/s; latencies are medians in milliseconds.
IMPORT_TARGET = 100_000.0  # tasks/s
LATENCY_TARGETS: dict[str, float] = {
    "list_first": 5.0,
    "list_last": 5.0,
    "task_get": 2.0,
    "completion_post": 3.0,
    "next": 5.0,
}
SCALE_TOLERANCE = 1.25  # "no worse at 1M than at 100k": median within +25 % (and +0.5 ms)
SCALE_SLACK_MS = 0.5


# --------------------------------------------------------------------------- results


@dataclass
class Latency:
    """Client-side latencies of one request kind, in milliseconds."""

    label: str
    target_key: str | None
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def target(self) -> float | None:
        return LATENCY_TARGETS.get(self.target_key) if self.target_key else None


@dataclass
class ImportFigures:
    tasks: int
    posts: int
    wall_seconds: float
    server_seconds: float
    slowest_post_rate: float

    @property
    def rate(self) -> float:
        return self.tasks / self.wall_seconds


@dataclass
class SizeResult:
    size: int
    imported: ImportFigures | None = None
    latencies: dict[str, Latency] = field(default_factory=dict)
    peak_rss_kib: int | None = None
    db_bytes: int | None = None
    load_before: float = 0.0  # 1-minute load average around the timed requests
    load_after: float = 0.0


# --------------------------------------------------------------------------- server process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def peak_rss_kib(self) -> int | None:
        """``VmHWM`` of the server process (Linux only), in KiB."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def server_command(project_dir: Path, port: int, db_url: str | None, workers: int = 1) -> list[str]:
    command = [sys.executable, "-m", "server.cli", "start", str(project_dir), "--init"]
    command += ["--host", HOST, "--port", str(port), "--log-level", "WARNING"]
    if db_url:
        command += ["--db", db_url]
    if workers > 1:
        command += ["--workers", str(workers)]
    return command


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and of its live descendants (``/proc``): with
    ``--workers N`` uvicorn's workers are children of the process we started, and a parent's
    ``/proc/<pid>/stat`` counts a child's time only once it has exited."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += times.get(current, 0.0)
        stack.extend(children.get(current, []))
    return total


def wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(HOST, server.port, timeout=2)
            try:
                connection.request("GET", "/api/health")
                if connection.getresponse().status == 200:
                    return
            finally:
                connection.close()
        time.sleep(0.1)
    raise RuntimeError(f"server not healthy after {STARTUP_TIMEOUT:.0f}s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGINT (uvicorn's graceful stop), then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 15.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)


@contextlib.contextmanager
def running_server(workdir: Path, db_url: str | None, workers: int = 1) -> Iterator[Server]:
    """A fresh ``labelgraph start`` process (``workers`` > 1: ``--workers N``, uvicorn's
    worker processes); always stopped on exit (errors, Ctrl-C)."""
    port = free_port()
    log_path = workdir / "server.log"
    command = server_command(workdir / "bench_project", port, db_url, workers)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only this script, which stops the server
        )
    server = Server(process, port, log_path)
    try:
        wait_until_healthy(server)
        yield server
    except BaseException:
        tail = server.log_tail()
        if tail:
            print(f"--- server log (tail) ---\n{tail}\n---", file=sys.stderr)
        raise
    finally:
        stop_server(process)


# --------------------------------------------------------------------------- HTTP client


class Client:
    """One keep-alive HTTP/1.1 connection (``http.client``: the least client overhead)."""

    def __init__(self, port: int, timeout: float = REQUEST_TIMEOUT) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def close(self) -> None:
        self.connection.close()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        expect: tuple[int, ...] = (200, 201, 204),
    ) -> bytes:
        headers = {"Content-Type": content_type} if body is not None else {}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        payload = response.read()
        if response.status not in expect:
            raise RuntimeError(f"{method} {path} -> {response.status}: {payload[:300]!r}")
        return payload

    def json(self, method: str, path: str, body: Any = None) -> Any:
        raw = None if body is None else json.dumps(body).encode()
        payload = self.request(method, path, raw)
        return json.loads(payload) if payload else None


Call = Callable[[], object]


def timed(call: Call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000.0


def measure(label: str, target_key: str | None, calls: list[Call], warmups: int) -> Latency:
    """Run the first ``warmups`` calls untimed, time the rest one by one."""
    for call in calls[:warmups]:
        call()
    return Latency(label, target_key, [timed(call) for call in calls[warmups:]])


# --------------------------------------------------------------------------- workload


def task_text(rng: random.Random, index: int) -> str:
    words = [f"#{index}"]
    while sum(len(w) + 1 for w in words) < 100:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:100]


def make_tasks(start: int, count: int, prediction_every: int, rng: random.Random) -> bytes:
    """``count`` tasks as a JSON body: bare ``{"text"}`` items, every ``prediction_every``-th
    wrapped with one scored prediction (so the prediction-score modes have data)."""
    items: list[dict[str, Any]] = []
    for index in range(start, start + count):
        data = {"text": task_text(rng, index)}
        if prediction_every and index % prediction_every == 0:
            prediction = {"result": CHOICE_RESULT, "score": round(rng.random(), 4)}
            items.append({"data": data, "predictions": [prediction]})
        else:
            items.append(data)
    return json.dumps(items, separators=(",", ":")).encode()


def reset_project(client: Client) -> None:
    """Empty an existing project (a shared PostgreSQL database keeps earlier runs' tasks)."""
    project = client.json("GET", "/api/project")
    if project["task_count"]:
        print(f"  project has {project['task_count']} tasks: DELETE /api/tasks", flush=True)
        client.request("DELETE", "/api/tasks")


def set_label_config(client: Client) -> None:
    form = urlencode({"label_config": LABEL_CONFIG}).encode()
    client.request(
        "POST", "/api/project/config", form, content_type="application/x-www-form-urlencoded"
    )


def import_tasks(
    port: int, size: int, prediction_every: int, rng: random.Random
) -> tuple[ImportFigures, list[int]]:
    """Import ``size`` tasks (one POST, or chunks of 100k); time each POST's wall time.

    Each POST gets its own connection: building a chunk's body can outlast the server's
    keep-alive timeout."""
    wall = server = 0.0
    slowest = math.inf
    task_ids: list[int] = []
    posts = 0
    for start in range(0, size, IMPORT_CHUNK):
        count = min(IMPORT_CHUNK, size - start)
        body = make_tasks(start, count, prediction_every, rng)
        client = Client(port, timeout=IMPORT_TIMEOUT)
        try:
            started = time.perf_counter()
            payload = client.request("POST", "/api/project/import", body, expect=(201,))
            elapsed = time.perf_counter() - started
        finally:
            client.close()
        report = json.loads(payload)
        if report["task_count"] != count:
            raise RuntimeError(f"import answered task_count={report['task_count']}")
        task_ids += report["new_task_ids"]
        wall += elapsed
        server += float(report["duration"])
        slowest = min(slowest, count / elapsed)
        posts += 1
        if size > IMPORT_CHUNK:
            print(f"    chunk {posts}: {count / elapsed:,.0f} tasks/s", flush=True)
    return ImportFigures(size, posts, wall, server, slowest), task_ids


@dataclass
class Plan:
    """What one size measures: repetitions, warm-ups and which tasks to touch."""

    size: int
    reps: int
    warmups: int
    task_ids: list[int]

    @property
    def runs(self) -> int:
        return self.reps + self.warmups


def get_calls(client: Client, paths: list[str]) -> list[Call]:
    return [lambda path=path: client.request("GET", path) for path in paths]


def measure_reads(client: Client, plan: Plan) -> list[Latency]:
    last_page = math.ceil(plan.size / 10)
    rng = random.Random(SEED)
    random_ids = [rng.choice(plan.task_ids) for _ in range(plan.runs)]
    probes = [
        ("GET /api/health (floor)", None, ["/api/health"] * plan.runs),
        ("GET /api/tasks?page=1", "list_first", ["/api/tasks?page=1&page_size=10"] * plan.runs),
        (
            f"GET /api/tasks?page={last_page}",
            "list_last",
            [f"/api/tasks?page={last_page}&page_size=10"] * plan.runs,
        ),
        ("GET /api/tasks/<random id>", "task_get", [f"/api/tasks/{i}" for i in random_ids]),
    ]
    return [
        measure(label, key, get_calls(client, paths), plan.warmups) for label, key, paths in probes
    ]


def measure_completions(client: Client, plan: Plan) -> Latency:
    """One completion per task, on the first tasks in id order (a labeler going through)."""
    targets = sorted(plan.task_ids)[: plan.runs]
    calls: list[Call] = [
        lambda task_id=task_id: client.request(
            "POST", f"/api/tasks/{task_id}/completions", COMPLETION_BODY, expect=(200, 201)
        )
        for task_id in targets
    ]
    return measure("POST /api/tasks/<id>/completions", "completion_post", calls, plan.warmups)


def set_sampling(client: Client, mode: str) -> None:
    client.json("PATCH", "/api/project", {"sampling": mode})


def measure_next(client: Client, plan: Plan) -> list[Latency]:
    """``/api/project/next`` with the project's sampling, then with every mode."""
    default = client.json("GET", "/api/project")["config"]["sampling"]
    calls = get_calls(client, ["/api/project/next"] * plan.runs)
    results = [measure(f"GET /api/project/next ({default})", "next", calls, plan.warmups)]
    for mode in SAMPLING_MODES:
        set_sampling(client, mode)
        results.append(measure(f"  next, sampling={mode}", "next", calls, plan.warmups))
    set_sampling(client, default)
    return results


def run_size(
    size: int, args: argparse.Namespace, db_url: str | None, rng: random.Random
) -> SizeResult:
    result = SizeResult(size)
    with (
        tempfile.TemporaryDirectory(prefix="labelgraph-bench-") as tmp,
        running_server(Path(tmp), db_url, args.workers) as server,
    ):
        client = Client(server.port)
        try:
            reset_project(client)
            set_label_config(client)
        finally:
            client.close()
        print(f"  importing {size:,} tasks ...", flush=True)
        result.imported, task_ids = import_tasks(server.port, size, args.prediction_every, rng)
        print(f"  import: {result.imported.rate:,.0f} tasks/s; timing requests ...", flush=True)
        plan = Plan(size, args.reps, args.warmups, task_ids)
        result.load_before = os.getloadavg()[0]
        client = Client(server.port)  # a fresh keep-alive connection for all timed requests
        try:
            latencies = measure_reads(client, plan)
            latencies.append(measure_completions(client, plan))
            latencies += measure_next(client, plan)
        finally:
            client.close()
        result.latencies = {latency.label: latency for latency in latencies}
        result.load_after = os.getloadavg()[0]
        result.peak_rss_kib = server.peak_rss_kib()
        result.db_bytes = database_bytes(Path(tmp) / "bench_project")
    return result


def database_bytes(project_dir: Path) -> int | None:
    files = list(project_dir.glob("labelgraph.db*"))
    return sum(f.stat().st_size for f in files) if files else None


# --------------------------------------------------------------------------- report


def verdict(value: float, target: float | None, higher_is_better: bool = False) -> str:
    if target is None:
        return ""
    good = value >= target if higher_is_better else value <= target
    return "ok" if good else "MISS"


def print_size(result: SizeResult) -> None:
    print(f"\n=== {result.size:,} tasks ===")
    if result.imported:
        figures = result.imported
        rate_verdict = verdict(figures.rate, IMPORT_TARGET, higher_is_better=True)
        print(
            f"import: {figures.tasks:,} tasks in {figures.posts} POST(s), "
            f"wall {figures.wall_seconds:.2f} s (server {figures.server_seconds:.2f} s) -> "
            f"{figures.rate:,.0f} tasks/s  [target >= {IMPORT_TARGET:,.0f}: {rate_verdict}]"
        )
        if figures.posts > 1:
            print(f"        slowest POST: {figures.slowest_post_rate:,.0f} tasks/s")
    header = f"{'request':<42} {'median ms':>10} {'p95 ms':>9} {'target':>8}  verdict"
    print(header)
    print("-" * len(header))
    for latency in result.latencies.values():
        target = latency.target
        target_text = f"<= {target:g}" if target is not None else ""
        print(
            f"{latency.label:<42} {latency.median:>10.2f} {latency.p95:>9.2f} "
            f"{target_text:>8}  {verdict(latency.median, target)}"
        )
    extras = []
    if result.peak_rss_kib is not None:
        extras.append(f"server peak RSS (VmHWM) {result.peak_rss_kib / 1024:,.0f} MiB")
    if result.db_bytes is not None:
        extras.append(f"database files {result.db_bytes / 1024**2:,.0f} MiB")
    extras.append(f"load average {result.load_before:.2f} -> {result.load_after:.2f}")
    print("; ".join(extras))


def scale_verdicts(results: list[SizeResult]) -> list[str]:
    """1M vs 100k for the list and next rows: no worse within the tolerance."""
    by_size = {r.size: r for r in results}
    big, base = by_size.get(ONE_MILLION), by_size.get(100_000)
    if not big or not base:
        return []
    lines = []
    for label, latency in big.latencies.items():
        if latency.target_key not in ("list_first", "list_last", "next"):
            continue
        reference = _same_row(base, label, latency)
        if reference is None:
            continue
        limit = reference.median * SCALE_TOLERANCE + SCALE_SLACK_MS
        status = "ok" if latency.median <= limit else "MISS"
        lines.append(
            f"  {label.strip():<40} 100k {reference.median:6.2f} ms -> "
            f"1M {latency.median:6.2f} ms  {status}"
        )
    return lines


def _same_row(result: SizeResult, label: str, latency: Latency) -> Latency | None:
    if label in result.latencies:
        return result.latencies[label]
    # The last-page label names the page number, which differs between sizes.
    matches = [x for x in result.latencies.values() if x.target_key == latency.target_key]
    return matches[0] if len(matches) == 1 else None


def print_summary(results: list[SizeResult]) -> None:
    print("\n=== summary (median ms; import in tasks/s) ===")
    sizes = [r.size for r in results]
    width = 12
    print(f"{'':<40}" + "".join(f"{s:>{width},}" for s in sizes) + f"{'target':>{width}}")
    rates = [f"{r.imported.rate:,.0f}" if r.imported else "-" for r in results]
    print(
        f"{'import POST (tasks/s)':<40}"
        + "".join(f"{x:>{width}}" for x in rates)
        + f"{'>= 100,000':>{width}}"
    )
    for index, label in enumerate(results[0].latencies if results else []):
        first = results[0].latencies[label]
        cells = []
        for result in results:
            row = list(result.latencies.values())
            cells.append(f"{row[index].median:.2f}" if index < len(row) else "-")
        target = f"<= {first.target:g}" if first.target is not None else ""
        name = "GET /api/tasks?page=<last>" if first.target_key == "list_last" else label
        print(f"{name:<40}" + "".join(f"{c:>{width}}" for c in cells) + f"{target:>{width}}")
    rss = [f"{r.peak_rss_kib / 1024:,.0f}" if r.peak_rss_kib else "-" for r in results]
    print(f"{'server peak RSS (MiB)':<40}" + "".join(f"{x:>{width}}" for x in rss))
    scale = scale_verdicts(results)
    if scale:
        tolerance = f"+{(SCALE_TOLERANCE - 1) * 100:.0f} % + {SCALE_SLACK_MS} ms"
        print(f"scaling 100k -> 1M (no worse, within {tolerance}):")
        print("\n".join(scale))
    misses = list(_misses(results))
    print("targets missed: " + (", ".join(misses) if misses else "none"))


def _misses(results: list[SizeResult]) -> Iterator[str]:
    for result in results:
        if result.imported and result.imported.rate < IMPORT_TARGET:
            yield f"import@{result.size:,}"
        for latency in result.latencies.values():
            if latency.target is not None and latency.median > latency.target:
                yield f"{latency.label.strip()}@{result.size:,}"
    for line in scale_verdicts(results):
        if line.endswith("MISS"):
            yield "scaling: " + line.split("100k")[0].strip()


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tasks", type=int, nargs="+", default=[10_000, 100_000], help="project sizes"
    )
    parser.add_argument("--with-1m", action="store_true", help="also run 1,000,000 tasks")
    parser.add_argument("--db", help="database URL passed to the server (e.g. postgresql://…)")
    parser.add_argument("--reps", type=int, default=200, help="timed requests per row")
    parser.add_argument("--warmups", type=int, default=5, help="untimed requests per row")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes of the server"
    )
    parser.add_argument(
        "--prediction-every",
        type=int,
        default=10,
        help="wrap every N-th task with a scored prediction (0: none)",
    )
    args = parser.parse_args(argv)
    sizes = list(dict.fromkeys(args.tasks + ([ONE_MILLION] if args.with_1m else [])))
    if min(sizes) < args.reps + args.warmups:
        parser.error(f"every size must be at least --reps + --warmups ({args.reps + args.warmups})")
    args.sizes = sizes
    return args


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # stop the server on SIGTERM too
    rng = random.Random(SEED)
    results: list[SizeResult] = []
    database = args.db or "SQLite (a fresh file per size)"
    print(
        f"labelgraph REST workload: sizes {args.sizes}, {args.reps} reps, db {database}, "
        f"{args.workers} worker(s)"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    try:
        for size in args.sizes:
            print(f"\n--- {size:,} tasks: starting a fresh server", flush=True)
            started = time.perf_counter()
            result = run_size(size, args, args.db, rng)
            print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
            results.append(result)
            print_size(result)
    except KeyboardInterrupt:
        print("\ninterrupted; server stopped", file=sys.stderr)
        status = 130
    except Exception:
        traceback.print_exc()
        print("\nbenchmark failed; server stopped", file=sys.stderr)
        status = 1
    else:
        status = 0
    if results:
        print_summary(results)
    return status


if __name__ == "__main__":
    sys.exit(main())
