"""Load test side by side: the locust scenario of ``locustfile.py`` against 1 process and 2
uvicorn workers on SQLite, 1 process on PostgreSQL, 2 and 4 workers on PostgreSQL, and two "hosts"
(separate processes with separate project directories on one PostgreSQL, the S3 file store on
a local moto server).

    python bench/load/run.py --tasks 1000000 --db postgresql://… [--duration 60] [--users 40]

Run it from a virtualenv of its own with ``pip install -e '.[postgres,storage,bench]' moto``
(locust brings a pytest plugin that the test venv should not load). Prints, per setup,
requests/s and p50/p99 per request type, errors, lost writes (completions acknowledged with
201 minus completions stored, counted after the run), the CPU per request of the servers, of
PostgreSQL's backends and of locust, and the load average.

The tasks are seeded once: into ``<db>_seed`` on PostgreSQL (every PostgreSQL setup starts
from a copy of it, ``CREATE DATABASE … TEMPLATE``) and into ``--cache`` for SQLite (copied for
each run), so a rerun skips seeding and no setup sees the previous one's writes.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rest_workload import tree_cpu_seconds

HERE = Path(__file__).parent
CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text"><Choice value="Positive"/>'
    '<Choice value="Negative"/></Choices></View>'
)
CHUNK = 100_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Setup:
    name: str
    database: str  # "" = SQLite in the project directory
    workers: int = 1
    hosts: int = 1
    file_store: bool = False


@dataclass
class Running:
    bases: list[str]
    pids: list[int]
    database: str = ""

    def cpu(self) -> float:
        """CPU seconds of the servers so far (their uvicorn workers included)."""
        return sum(tree_cpu_seconds(pid) for pid in self.pids)

    def database_cpu(self) -> float:
        """CPU seconds so far of the PostgreSQL backends serving the servers' database (the
        server runs on this machine), or 0."""
        if not self.database:
            return 0.0
        connection, name = _admin(self.database)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            pids = [int(row[0]) for row in cursor.fetchall()]
        connection.close()
        return sum(tree_cpu_seconds(pid) for pid in pids)


@contextlib.contextmanager
def servers(
    setup: Setup, root: Path, env: dict[str, str], seeded: Path | None = None
) -> Iterator[Running]:
    """The setup's server processes; ``seeded``: a SQLite project directory copied in first."""
    processes: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for number in range(setup.hosts):
            project = root / f"host-{number}" / "bench"
            project.parent.mkdir(parents=True, exist_ok=True)
            if seeded is not None and not setup.database:
                shutil.copytree(seeded, project)
            port = free_port()
            command = [sys.executable, "-m", "server.cli", "start", str(project), "--init"]
            command += ["--port", str(port), "--log-level", "WARNING"]
            command += ["--workers", str(setup.workers)]
            if setup.database:
                command += ["--db", setup.database]
            processes.append(subprocess.Popen(command, env=env))
            base = f"http://127.0.0.1:{port}"
            _wait(base, processes[-1])
            bases.append(base)
        yield Running(bases, [p.pid for p in processes], setup.database)
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                return
        if process.poll() is not None:
            raise RuntimeError(f"the server at {base} exited")
        time.sleep(0.2)
    raise RuntimeError(f"{base} did not answer")


def seed(base: str, tasks: int) -> None:
    """Config and ``tasks`` tasks, unless the project has them already."""
    with httpx.Client(base_url=base, timeout=600) as client:
        count = client.get("/api/project").json()["task_count"]
        if count == tasks:
            return
        client.delete("/api/tasks")
        assert client.post("/api/project/config", data={"label_config": CONFIG}).is_success
        started = time.monotonic()
        for first in range(0, tasks, CHUNK):
            batch = [
                {"text": f"task {i} " + "x" * 80} for i in range(first, min(tasks, first + CHUNK))
            ]
            response = client.post("/api/project/import", json=batch)
            assert response.status_code == 201, response.text
        print(f"  seeded {tasks:,} tasks in {time.monotonic() - started:.0f} s", flush=True)


def set_sampling(base: str, sampling: str) -> None:
    response = httpx.patch(base + "/api/project", json={"sampling": sampling}, timeout=60)
    assert response.is_success, response.text


def _admin(url: str) -> tuple[Any, str]:
    """A connection to the server's ``postgres`` database (autocommit) and the name of ``url``'s."""
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    connection = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    connection.autocommit = True
    return connection, name


def _marker(tasks: int) -> str:
    return f"labelgraph load seed: {tasks} tasks"


def pg_snapshot_ready(url: str, tasks: int) -> bool:
    """Whether ``<db>_seed`` holds a seeded copy of ``tasks`` tasks."""
    connection, name = _admin(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name + "_seed",),
        )
        row = cursor.fetchone()
    connection.close()
    return row is not None and row[0] == _marker(tasks)


def pg_snapshot(url: str, tasks: int) -> None:
    """Copy the freshly seeded database to ``<db>_seed`` (no server may be connected)."""
    connection, name = _admin(url)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}_seed"')
        cursor.execute(f'CREATE DATABASE "{name}_seed" TEMPLATE "{name}"')
        cursor.execute(f"COMMENT ON DATABASE \"{name}_seed\" IS '{_marker(tasks)}'")
    connection.close()


def pg_restore(url: str, template: str = "_seed") -> float:
    """Recreate the database from ``<db>_seed`` (``template=""``: empty); the seconds it took."""
    started = time.monotonic()
    connection, name = _admin(url)
    source = f'"{name}{template}"' if template else "template0"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE {source}')
    connection.close()
    return time.monotonic() - started


def prepare_postgresql(url: str, tasks: int, root: Path, env: dict[str, str]) -> None:
    """Seed ``tasks`` tasks once into ``<db>_seed``; every PostgreSQL setup starts from a copy
    of it (``CREATE DATABASE … TEMPLATE``), so imports and completions of one setup do not
    change the next one's database."""
    if pg_snapshot_ready(url, tasks):
        print(f"  restored {tasks:,} seeded tasks in {pg_restore(url):.1f} s", flush=True)
        return
    pg_restore(url, template="")  # seed into an empty database
    with servers(Setup("seed", url), root / "seed-pg", env) as running:
        seed(running.bases[0], tasks)
    pg_snapshot(url, tasks)


def prepare_sqlite(cache: Path, tasks: int, env: dict[str, str]) -> Path:
    """A seeded SQLite project directory under ``cache``, built once per size."""
    done = cache / f"sqlite-{tasks}" / "done"
    if not done.exists():
        shutil.rmtree(done.parent, ignore_errors=True)
        done.parent.mkdir(parents=True)
        with servers(Setup("seed", ""), done.parent, env) as running:
            seed(running.bases[0], tasks)
        done.write_text(_marker(tasks))
    return done.parent / "host-0" / "bench"


def completions(base: str) -> int:
    query = {"query": "{ project { completionCount } }"}
    answer = httpx.post(base + "/graphql", json=query, timeout=60).json()
    return int(answer["data"]["project"]["completionCount"])


def run_locust(running: Running, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    bases = running.bases
    ledger = out / "ledger.txt"
    env = dict(os.environ, LOAD_HOSTS=",".join(bases), LOAD_LEDGER=str(ledger))
    env["LOAD_PAGES"] = str(max(1, args.tasks // 10))
    env["LOAD_WAIT"] = str(args.wait)
    command = [
        sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
        "-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration}s",
        "--csv", str(out / "stats"), "--only-summary", "--host", bases[0],
        "--stop-timeout", "30",
    ]  # fmt: skip
    if args.skip:
        command += [c for c in ("Annotator", "Importer", "Exporter") if c not in args.skip]
    load_before = os.getloadavg()
    server_before = running.cpu()
    database_before = running.database_cpu()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_before = usage.ru_utime + usage.ru_stime
    subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = usage.ru_utime + usage.ru_stime - client_before
    server_cpu = running.cpu() - server_before
    # Backends opened during the run count whole, those closed during it not at all: the
    # servers keep a pool of connections open, so this is close.
    database_cpu = running.database_cpu() - database_before
    load_after = os.getloadavg()
    ids = [int(line) for line in ledger.read_text().split()] if ledger.exists() else []
    rows = list(csv.DictReader((out / "stats_stats.csv").open()))
    return {
        "rows": rows,
        "acknowledged": ids,
        "load": (load_before, load_after),
        "cpu": (server_cpu, client_cpu, database_cpu),
    }


def report(setup: Setup, result: dict[str, Any], stored: int) -> dict[str, Any]:
    acknowledged = result["acknowledged"]
    lost = len(set(acknowledged)) - stored
    print(f"\n== {setup.name}")
    print(f"  {'request':<14}{'count':>8}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}")
    summary: dict[str, Any] = {"setup": setup.name, "rows": {}}
    for row in result["rows"]:
        name = row["Name"]
        print(
            f"  {name:<14}{int(row['Request Count']):>8}{float(row['Requests/s']):>9.1f}"
            f"{row['50%']:>8}{row['99%']:>8}{int(row['Failure Count']):>8}"
        )
        summary["rows"][name] = {
            k: row[k] for k in ("Request Count", "Requests/s", "50%", "99%", "Failure Count")
        }
    (before, after) = result["load"]
    (server_cpu, client_cpu, database_cpu) = result["cpu"]
    total = sum(int(row["Request Count"]) for row in result["rows"] if row["Name"] != "Aggregated")
    per = 1000 / max(1, total)
    print(f"  completions acknowledged {len(acknowledged)}, stored {stored}, lost {lost}")
    print(
        f"  CPU per request: servers {server_cpu * per:.2f} ms, PostgreSQL "
        f"{database_cpu * per:.2f} ms, locust {client_cpu * per:.2f} ms (in all: servers "
        f"{server_cpu:.1f} s, PostgreSQL {database_cpu:.1f} s, locust {client_cpu:.1f} s)"
    )
    print(f"  load average before {before[0]:.2f}, after {after[0]:.2f} (1 min)")
    summary.update(acknowledged=len(acknowledged), stored=stored, lost=lost, load=[before, after])
    summary.update(server_cpu_s=server_cpu, database_cpu_s=database_cpu)
    summary.update(locust_cpu_s=client_cpu, requests=total)
    return summary


@contextlib.contextmanager
def moto_bucket(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(endpoint + "/moto-api/", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket="labelgraph-bench")
        env.update(
            LABELGRAPH_FILE_STORE="s3://labelgraph-bench/files",
            LABELGRAPH_FILE_STORE_ENDPOINT=endpoint,
        )
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument(
        "--db",
        default="",
        help="PostgreSQL URL of a database of the benchmark's own: it is dropped and created again "
        "(from <db>_seed, which the script creates) for every setup",
    )
    parser.add_argument("--duration", type=int, default=60, help="seconds per setup")
    parser.add_argument("--users", type=int, default=40, help="locust users (annotators+2)")
    parser.add_argument(
        "--wait", type=float, default=0.05, help="an annotator's think time: 0 to this many s"
    )
    parser.add_argument(
        "--sampling",
        default="uniform",
        help="the project's label stream (uniform: annotators spread over the unlabeled tasks; "
        "sequential: they all get the lowest unlabeled task, as Label Studio's default)",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        choices=("Importer", "Exporter"),
        help="leave these users out (to see what the importer or exporter costs the others)",
    )
    parser.add_argument(
        "--source",
        help="run the servers from this checkout (PYTHONPATH), e.g. a worktree of an older "
        "commit to compare with; the seeded databases are shared",
    )
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "labelgraph-load-cache"),
        help="where the seeded SQLite project is kept between runs",
    )
    parser.add_argument("--only", nargs="*", help="names of setups to run")
    parser.add_argument("--json", help="write the summary to this file")
    args = parser.parse_args()
    setups = [Setup("1 process, SQLite", ""), Setup("2 workers, SQLite", "", workers=2)]
    if args.db:
        setups += [
            Setup("1 process, PostgreSQL", args.db),
            Setup("2 workers, PostgreSQL", args.db, workers=2),
            Setup("4 workers, PostgreSQL", args.db, workers=4),
            Setup("2 hosts, PostgreSQL, S3 files", args.db, hosts=2, file_store=True),
        ]
    if args.only:
        setups = [s for s in setups if s.name in args.only]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABELGRAPH_")}
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    if args.source:
        env["PYTHONPATH"] = str(Path(args.source).resolve())
    summaries = []
    with tempfile.TemporaryDirectory(prefix="labelgraph-load-") as tmp:
        root = Path(tmp)
        for setup in setups:
            out = root / setup.name.replace(" ", "_").replace(",", "")
            out.mkdir()
            seeded = None
            if setup.database:
                prepare_postgresql(setup.database, args.tasks, root, env)
            else:
                seeded = prepare_sqlite(Path(args.cache), args.tasks, env)
            with contextlib.ExitStack() as stack:
                setup_env = dict(env)
                if setup.file_store:
                    stack.enter_context(moto_bucket(setup_env))
                running = stack.enter_context(servers(setup, out, setup_env, seeded))
                seed(running.bases[0], args.tasks)  # a no-op: the copy holds them
                set_sampling(running.bases[0], args.sampling)
                before = completions(running.bases[0])
                result = run_locust(running, args, out)
                stored = completions(running.bases[-1]) - before
            summaries.append(report(setup, result, stored))
    if args.json:
        Path(args.json).write_text(json.dumps(summaries, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
