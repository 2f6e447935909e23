"""Run the real ``labelgraph`` command as a child process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def labelgraph_command() -> list[str]:
    """The installed console script beside this interpreter (``python -m server.cli`` when
    the package is not installed)."""
    script = shutil.which("labelgraph", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "server.cli"]


def run_labelgraph(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``labelgraph ARGS`` to completion (it must exit by itself), output captured."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("LABELGRAPH_")
    }
    environment.update(env or {})
    return subprocess.run(
        [*labelgraph_command(), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
