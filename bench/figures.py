"""Figures a benchmark script reports, for ``bench/throughput.py`` to collect.

A script calls :func:`record` for each figure it prints. Run on its own, nothing happens; run
by ``throughput.py``, which names a file in ``LABELGRAPH_BENCH_FIGURES``, each figure is
appended to that file as one JSON line, so the driver never parses the scripts' tables.
"""

from __future__ import annotations

import json
import os

FIGURES_FILE_VARIABLE = "LABELGRAPH_BENCH_FIGURES"


def record(key: str, value: float) -> None:
    """Keep ``value`` under ``key`` (a name listed in ``throughput.FIGURES``) for the driver."""
    path = os.environ.get(FIGURES_FILE_VARIABLE)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"key": key, "value": float(value)}) + "\n")
