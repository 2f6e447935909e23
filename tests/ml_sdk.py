"""Today's ``label-studio-ml`` SDK (1.0.9) as a real ML backend process on 127.0.0.1.

The SDK pins Flask 1.1.2, Werkzeug 2.0.2 and itsdangerous 2.0.1, and labelgraph needs
itsdangerous >= 2.1, so it cannot join the ``test`` extra: it lives in a virtualenv of its own,
made on first use with pip (the package index must be reachable) and kept under
``~/.cache/labelgraph-tests/`` (or ``LABELGRAPH_TEST_SDK_VENV``) for later runs. Without the
index the tests skip, saying why, except in CI (``CI=true``), where they fail. The SDK also
imports ``rq`` without depending on it, needs ``LABEL_STUDIO_ML_BACKEND_V2=1`` to serve
``/predict`` without Redis and ``AUTO_UPDATE=`` (empty) to keep a model trained through
``/train`` (README, "ML backends").
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SDK_REQUIREMENTS = ("label-studio-ml==1.0.9", "rq")
MODEL_SCRIPT = Path(__file__).parent / "sdk_backend" / "majority_model.py"
INSTALL_TIMEOUT = 600


def _venv_dir() -> Path:
    configured = os.environ.get("LABELGRAPH_TEST_SDK_VENV")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "labelgraph-tests" / "label-studio-ml-1.0.9"


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def sdk_python() -> Path:
    """The SDK venv's interpreter, making the venv first if needed (atomically: a half-made
    venv is never taken for a ready one)."""
    venv = _venv_dir()
    ready = venv / ".ready"
    if ready.exists():
        return _python(venv)
    partial = venv.with_name(venv.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(partial)], check=True, timeout=120)
        subprocess.run(
            [str(_python(partial)), "-m", "pip", "install", "--quiet", *SDK_REQUIREMENTS],
            check=True,
            timeout=INSTALL_TIMEOUT,
            capture_output=True,
            text=True,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        output = getattr(exc, "stderr", "") or ""
        _unavailable(f"cannot install {' '.join(SDK_REQUIREMENTS)} into a venv: {exc} {output}")
    # A venv's python finds its packages relative to itself, so the finished one can move into
    # place (its console scripts' shebangs would not follow, but only python is run).
    (partial / ".ready").write_text("ok\n", encoding="utf-8")
    try:
        if venv.exists() and not ready.exists():
            shutil.rmtree(venv)  # a leftover of an interrupted run
        partial.rename(venv)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        if not ready.exists():  # pragma: no cover - another session is moving its venv
            raise
    return _python(venv)


@dataclass
class SdkBackend:
    url: str
    fit_record: Path

    def fit_calls(self) -> list[dict[str, Any]]:
        if not self.fit_record.exists():
            return []
        lines = self.fit_record.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


@contextlib.contextmanager
def run_sdk_backend(python: Path, directory: Path) -> Iterator[SdkBackend]:
    directory.mkdir(parents=True, exist_ok=True)
    record = directory / "fit.jsonl"
    # V2=1: serve /predict without Redis. AUTO_UPDATE empty (the SDK tests the raw string, so
    # "0" would be true): else every /setup reloads the model from the directory layout of
    # its /webhook training, where its /train never writes, and forgets the trained model.
    env = {**os.environ, "LABEL_STUDIO_ML_BACKEND_V2": "1", "AUTO_UPDATE": ""}
    env.pop("PYTHONPATH", None)
    command = [str(python), str(MODEL_SCRIPT), str(directory / "models"), str(record)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the label-studio-ml backend did not start"
        line = process.stdout.readline()
        assert line.startswith("listening on "), f"unexpected first line {line!r}"
        yield SdkBackend(url=line.split()[-1], fit_record=record)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


@pytest.fixture(scope="session")
def sdk_python_path() -> Path:
    return sdk_python()


@pytest.fixture
def sdk_backend(sdk_python_path: Path, tmp_path: Path) -> Iterator[SdkBackend]:
    with run_sdk_backend(sdk_python_path, tmp_path / "sdk_backend") as backend:
        yield backend
