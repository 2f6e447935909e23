"""Builds the browser side (frontend/, npm + esbuild) into server/static/app/ during
``pip install .`` and ``pip install -e .``; everything else is in pyproject.toml.

The build runs when an input changed since the last one (a stamp of their hashes), so a
repeated ``pip install -e .`` costs nothing. Without Node.js/npm it stops with one line saying so.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
FRONTEND = ROOT / "frontend"
OUTPUT = ROOT / "server" / "static" / "app"
STAMP = OUTPUT / ".build-stamp"
NEEDS_NODE = (
    "labelgraph: building the web UI needs Node.js (>= 18) and npm on PATH "
    "(Debian/Ubuntu: apt-get install nodejs npm); install them and run pip install again."
)


def _inputs_digest() -> str:
    digest = hashlib.sha256()
    names = ["package.json", "package-lock.json", "build.mjs"]
    files = [FRONTEND / n for n in names] + sorted((FRONTEND / "src").rglob("*"))
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(FRONTEND)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _run(*command: str) -> None:
    try:
        subprocess.run(command, cwd=FRONTEND, check=True, stdout=sys.stderr)
    except subprocess.CalledProcessError as failed:
        shown = " ".join(command)
        raise SystemExit(f"labelgraph: `{shown}` in frontend/ failed: {failed}") from None


def build_frontend() -> None:
    if not (FRONTEND / "package.json").is_file():
        if (OUTPUT / "index.html").is_file():
            return  # an sdist/wheel built elsewhere already carries the bundle
        raise SystemExit("labelgraph: frontend/ is missing; cannot build the web UI")
    digest = _inputs_digest()
    if (OUTPUT / "index.html").is_file() and STAMP.is_file() and STAMP.read_text() == digest:
        return
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit(NEEDS_NODE)
    lock_stamp = FRONTEND / "node_modules" / ".labelgraph-lock"
    lock = (FRONTEND / "package-lock.json").read_bytes()
    lock_digest = hashlib.sha256(lock).hexdigest()
    if not lock_stamp.is_file() or lock_stamp.read_text() != lock_digest:
        _run("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
        lock_stamp.write_text(lock_digest)
    _run("node", "build.mjs")
    STAMP.write_text(digest)


class BuildPyWithFrontend(build_py):
    """The wheel's (and an editable install's) build_py, after the web UI is built, so its
    files are package data of ``server``."""

    def run(self) -> None:
        build_frontend()
        super().run()


setup(cmdclass={"build_py": BuildPyWithFrontend})
