"""Serving ``s3://``, ``gs://`` and ``azure-blob://`` task data as presigned (signed, SAS) GET
URLs (rest-api.md §9.3)."""

from __future__ import annotations

import re
from typing import Any

from server.models import Project, Storage
from server.services.storage.backends import (
    ClientCache,
    CloudStore,
    RedisStore,
    StorageFailure,
    client_for,
)
from server.services.storage.config import summary
from server.services.storage.storage_types import CLOUD_SOURCES, CLOUD_TARGETS, SOURCE, TARGET
from server.services.storage.sync_env import spec_of
from server.settings import Settings

SCHEMES = ("s3://", "gs://", "azure-blob://")
URI = re.compile(r"(s3|gs|azure-blob)://([^/\s\"'<>]+)/([^\s\"'<>]+)")


def has_blob_uri(data: Any) -> bool:
    """Whether task data holds a cloud URI in a top-level string value (cheap: no regex, and
    one search for ``://`` in each string before the schemes are looked for)."""
    if not isinstance(data, dict):
        return False
    for value in data.values():
        if isinstance(value, str) and "://" in value and any(s in value for s in SCHEMES):
            return True
    return False


class DataResolver:
    """Replaces ``<scheme>://bucket/key`` in top-level string values of task data (whole
    values and URIs inside longer text) with presigned GET URLs; values it cannot sign stay.
    Only URIs of the storage's own scheme, bucket (container) and prefix are signed: a URL
    signed for any bucket named in task data would lend the storage's credentials (and, for
    S3, show its access key id and session token) to whoever writes task data."""

    def __init__(self, store: CloudStore) -> None:
        self.store = store
        prefix = store.prefix.strip("/")
        self.key_prefix = f"{prefix}/" if prefix else ""
        self.marker = f"{store.scheme}://"

    def signable(self, scheme: str, bucket: str, key: str) -> bool:
        if scheme != self.store.scheme or bucket != self.store.bucket:
            return False
        if not key.startswith(self.key_prefix):
            return False
        return not any(part in ("..", ".") for part in key.split("/"))

    def _sign(self, match: re.Match[str]) -> str:
        scheme, bucket, key = match.groups()
        if not self.signable(scheme, bucket, key):
            return match.group(0)
        try:
            return self.store.presign(bucket, key)
        except Exception:  # no credentials and the like: serve the URI as stored
            return match.group(0)

    def __call__(self, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = None
        for key, value in data.items():
            if isinstance(value, str) and self.marker in value:
                signed = URI.sub(self._sign, value)
                if signed != value:
                    out = dict(data) if out is None else out
                    out[key] = signed
        return data if out is None else out


def needs_resolver(project: Project) -> bool:
    kinds = summary(project)
    return kinds.get(SOURCE) in CLOUD_SOURCES or kinds.get(TARGET) in CLOUD_TARGETS


def data_resolver(
    project: Project, rows: dict[str, Storage], settings: Settings, clients: ClientCache | None
) -> DataResolver | None:
    """The presigner for a project's cloud URIs: its cloud source, else its cloud target; None
    when it has neither, ``presign`` is false or the storage holds no key to sign with."""
    row = rows.get(SOURCE)
    if row is None or row.type not in CLOUD_SOURCES:
        row = rows.get(TARGET)
        if row is None or row.type not in CLOUD_TARGETS:
            return None
    spec = spec_of(row, settings.for_project(project.name).project_dir)
    try:
        store = client_for(spec, settings, clients)
    except StorageFailure:
        return None
    if isinstance(store, RedisStore) or not store.can_presign:
        return None
    return DataResolver(store)
