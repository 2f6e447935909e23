"""Serving ``s3://`` task data as presigned GET URLs (rest-api.md §9.3)."""

from __future__ import annotations

import re
from typing import Any

from server.models import Project, Storage
from server.services.storage.backends import (
    ClientCache,
    S3Store,
    StorageFailure,
    client_for,
)
from server.services.storage.config import summary
from server.services.storage.storage_types import SOURCE, TARGET
from server.services.storage.sync_env import spec_of
from server.settings import Settings

S3_URI = re.compile(r"s3://([^/\s\"'<>]+)/([^\s\"'<>]+)")


def has_s3_uri(data: Any) -> bool:
    return isinstance(data, dict) and any(
        isinstance(v, str) and "s3://" in v for v in data.values()
    )


class DataResolver:
    """Replaces ``s3://bucket/key`` in top-level string values of task data (whole values
    and URIs inside longer text) with presigned GET URLs; values it cannot sign stay. Only
    objects of the storage's own bucket, under its prefix, are signed: a URL signed for any
    bucket named in task data would lend the storage's credentials (and show its access key
    id and session token) to whoever writes task data."""

    def __init__(self, store: S3Store) -> None:
        self.store = store
        prefix = store.prefix.strip("/")
        self.key_prefix = f"{prefix}/" if prefix else ""

    def signable(self, bucket: str, key: str) -> bool:
        if bucket != self.store.bucket or not key.startswith(self.key_prefix):
            return False
        return not any(part in ("..", ".") for part in key.split("/"))

    def _sign(self, match: re.Match[str]) -> str:
        if not self.signable(match.group(1), match.group(2)):
            return match.group(0)
        try:
            return self.store.presign(match.group(1), match.group(2))
        except Exception:  # no credentials and the like: serve the URI as stored
            return match.group(0)

    def __call__(self, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = None
        for key, value in data.items():
            if isinstance(value, str) and "s3://" in value:
                signed = S3_URI.sub(self._sign, value)
                if signed != value:
                    out = dict(data) if out is None else out
                    out[key] = signed
        return data if out is None else out


def needs_resolver(project: Project) -> bool:
    kinds = summary(project)
    return kinds.get(SOURCE) == "s3" or kinds.get(TARGET) == "s3-completions"


def data_resolver(
    project: Project, rows: dict[str, Storage], settings: Settings, clients: ClientCache | None
) -> DataResolver | None:
    """The presigner for a project's ``s3://`` data: its S3 source, else its S3 target; None
    when it has neither or ``presign`` is false."""
    row = rows.get(SOURCE)
    if row is None or row.type != "s3":
        row = rows.get(TARGET)
        if row is None or row.type != "s3-completions":
            return None
    spec = spec_of(row, settings.for_project(project.name).project_dir)
    try:
        store = client_for(spec, settings, clients)
    except StorageFailure:
        return None
    if not isinstance(store, S3Store) or not store.presign_enabled:
        return None
    return DataResolver(store)
