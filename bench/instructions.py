"""Machine instructions per request of the hot paths, counted by valgrind (callgrind).

Time on a shared or virtual machine moves by 20-40 % between runs of the same code, more
than most changes to a request path are worth; the number of instructions a request executes
does not move (±0.5 % here). This runs ``bench/asgi_cpu.py``'s requests (the ASGI app called
in-process: middleware, routing, the stored GraphQL operation on its worker thread, the
database, the answer; no sockets, no uvicorn) under ``valgrind --tool=callgrind`` with
instrumentation switched on only around its measured loop, and prints the instructions per
request, all threads counted::

    python bench/instructions.py [--only health task-get next-task task-page graphql-page
                                        completion-repeat completion-first]
                                 [--reps 300] [--tasks 1000] [--source CHECKOUT]

``--source`` measures another checkout's code with this script (any checkout whose
``bench/asgi_cpu.py`` times its loop with ``time.process_time``), for before/after figures.
Needs ``valgrind`` (Debian package ``valgrind``); a request runs ~50x slower under it, so the
default 300 requests per row take ~30 s. Instructions are not time (cache misses, system
calls and waits are not in them), but a change that removes instructions from a path removes
CPU time from it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def child(source: Path, asgi_args: list[str]) -> int:
    """Runs under valgrind: ``asgi_cpu.py`` of ``source`` with its measured loops counted."""
    sys.path[:0] = [str(source / "bench"), str(source)]
    os.chdir(source)
    import asgi_cpu  # the source checkout's

    import schema.stored

    # One operation thread: requests run one at a time, and in checkouts before 17fedbb a
    # second thread (started when the loop submitted before the first had marked itself idle)
    # would split their count in two.
    defaults = schema.stored.OperationThreads.__init__.__defaults__
    if defaults:
        schema.stored.OperationThreads.__init__.__defaults__ = (1, *defaults[1:])

    real = asgi_cpu.time
    calls = [0]

    class Clock:
        """``asgi_cpu``'s clock: its odd calls start a measured loop, its even calls end it."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def process_time(self) -> float:
            calls[0] += 1
            switch = "on" if calls[0] % 2 else "off"
            subprocess.run(
                ["callgrind_control", "--instr=" + switch, str(os.getpid())],
                check=True,
                capture_output=True,
            )
            return float(real.process_time())

    asgi_cpu.time = Clock()  # type: ignore[assignment]
    return int(asgi_cpu.main(asgi_args) or 0)


def _totals(dump: Path) -> int:
    figures: dict[str, int] = {}
    for line in dump.read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("totals", "summary"):
            figures[key] = int(value)
    # "totals" sums the dump's cost lines; "summary" reads 0 when collection was switched on late
    return figures.get("totals", figures.get("summary", 0))


def count(
    source: Path, row: str, reps: int, tasks: int, keep: Path | None = None
) -> tuple[float, float]:
    """Instructions per request of ``row``: in the threads that serve it (the event loop's and
    the busiest other, the one operation thread), and in all threads (the server's background
    threads too, whose ticks vary with the run's length). ``keep``: a folder to copy the
    per-thread dumps into, for ``callgrind_annotate``."""
    with tempfile.TemporaryDirectory(prefix="labelgraph-instr-") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            str(source),
            "--tasks",
            str(tasks),
            "--reps",
            str(reps),
            "--rounds",
            "1",
            "--only",
            row,
        ]
        env = {**os.environ, "LABELGRAPH_LOG_LEVEL": "WARNING"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        dumps = sorted(Path(tmp).glob("callgrind.out-*"))  # -01 is the main thread
        if done.returncode != 0 or not dumps:
            raise SystemExit(f"{row}: valgrind failed:\n{done.stderr[-3000:]}")
        per_thread = [_totals(dump) for dump in dumps]
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for dump in dumps:
                shutil.copy(dump, keep / f"{row}.{dump.name}")
    serving = per_thread[0] + max(per_thread[1:], default=0)
    return serving / reps, sum(per_thread) / reps


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(Path(argv[1]), argv[2:])
    from asgi_cpu import ROWS  # this checkout's rows (a child imports its source's asgi_cpu)

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--reps", type=int, default=300, help="measured requests per row")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks imported first")
    parser.add_argument(
        "--source", type=Path, default=HERE.parent, help="checkout to measure (default: this)"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="folder to keep each row's callgrind dumps in (<row>.callgrind.out-NN, one a thread)",
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (Debian: apt install valgrind)")
    source = args.source.resolve()
    print(f"instructions per request, {args.reps} requests per row, {source}")
    print(f"{'row':18} {'serving':>12} {'all threads':>12}")
    for row in args.only:
        serving, every = count(source, row, args.reps, args.tasks, args.keep)
        print(f"{row:18} {serving:12,.0f} {every:12,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
