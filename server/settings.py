"""Server settings: declared once as (name, default, help), read from flags and env vars.

Every setting has an environment variable ``LABELGRAPH_<NAME>``; command-line flags override
the environment. ``tests/test_docs.py`` fails when the README does not list a setting.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "LABELGRAPH_"
SAMPLING_MODES = ("sequential", "uniform", "prediction-score-min", "prediction-score-max")
MiB = 1024 * 1024


def _setting(default: Any, help: str, *, cast: type = str) -> Any:
    return field(default=default, metadata={"help": help, "cast": cast})


@dataclass(frozen=True)
class Settings:
    project_dir: str = _setting(
        "my_project", "Project directory: holds the SQLite database and upload/"
    )
    host: str = _setting("127.0.0.1", "Address the HTTP server binds to")
    port: int = _setting(8080, "Port the HTTP server listens on", cast=int)
    database_url: str = _setting(
        "",
        "Database URL (sqlite:///path.db or postgresql://user:pass@host/db); "
        "empty = <project_dir>/labelgraph.db",
    )
    sampling: str = _setting(
        "sequential",
        "Next-task sampling for new projects: " + ", ".join(SAMPLING_MODES),
    )
    log_level: str = _setting("INFO", "Log level (DEBUG, INFO, WARNING, ERROR)")
    max_body_size: int = _setting(
        200 * MiB, "Largest accepted request body in bytes (413 above it)", cast=int
    )
    max_page_size: int = _setting(
        100000, "Largest page_size (REST) or first (GraphQL) of a task listing", cast=int
    )
    db_pool_size: int = _setting(16, "Database connections kept open per server process", cast=int)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.project_dir) / 'labelgraph.db'}"

    @property
    def upload_dir(self) -> Path:
        return Path(self.project_dir) / "upload"

    @property
    def project_name(self) -> str:
        return Path(self.project_dir).resolve().name

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``LABELGRAPH_*`` variables, then explicit overrides (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _cast(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.sampling not in SAMPLING_MODES:
            raise ValueError(
                f"sampling must be one of {', '.join(SAMPLING_MODES)}, not {self.sampling!r}"
            )
        for name in ("max_body_size", "max_page_size", "db_pool_size", "port"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer")

    @classmethod
    def documented(cls) -> list[tuple[str, str, Any, str]]:
        """(env var, field name, default, help) for each setting, for docs and --help."""
        return [
            (ENV_PREFIX + f.name.upper(), f.name, f.default, f.metadata["help"])
            for f in dataclasses.fields(cls)
        ]


def _cast(f: dataclasses.Field[Any], raw: str) -> Any:
    cast = f.metadata["cast"]
    try:
        return cast(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{f.name.upper()}: expected {cast.__name__}") from exc
