"""The file store: one small interface over where uploads and export files are kept.

Every process still writes a file into its project directory first (imports link staged files
into ``upload/``, exports write their zip into ``export/``); the store then holds the copy that
every other process serves:

* :class:`ProjectDirectoryStore` (default, ``LABELGRAPH_FILE_STORE`` empty): the project
  directory is the only copy, as before (several processes need a shared directory).
* :class:`~server.services.files.s3.S3FileStore` (``s3://bucket/prefix``): files are put into
  the bucket under ``<prefix>/<project name>/<area>/<name>``; a process that has no local copy
  answers ``/data/upload/…`` and ``/data/export/…`` with a 302 to a presigned URL.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from server.settings import Settings

UPLOAD = "upload"
EXPORT = "export"
IMPORT = "import"  # staged imports


@dataclass(frozen=True)
class StoredFile:
    size: int
    modified_at: float  # Unix seconds


class FileStore(Protocol):
    """What the server needs of a place for files (keys: project name, area, file name)."""

    shared: bool  # whether other processes (hosts) see what this one puts

    def put(self, project: str, area: str, name: str, source: Path) -> None:
        """Copy the local file ``source`` in (replacing what is there)."""

    def stat(self, project: str, area: str, name: str) -> StoredFile | None:
        """The stored file's size and time, or None when there is none."""

    def url(self, project: str, area: str, name: str, download_name: str) -> str:
        """A URL that serves the file for a while (as an attachment called
        ``download_name``)."""

    def fetch(self, project: str, area: str, name: str, target: Path) -> bool:
        """Copy the stored file to the local ``target``; False when there is none."""

    def delete(self, project: str, area: str, name: str) -> None: ...

    def listing(
        self, project: str, area: str, prefix: str = ""
    ) -> Iterator[tuple[str, StoredFile]]:
        """Every stored file of the area whose name starts with ``prefix``, with its time."""

    def delete_many(self, project: str, area: str, names: list[str]) -> None:
        """Delete these files (those already gone are ignored)."""


class ProjectDirectoryStore:
    """The default: files only in the project directory (nothing more to do)."""

    shared = False

    def put(self, project: str, area: str, name: str, source: Path) -> None:
        return None

    def stat(self, project: str, area: str, name: str) -> StoredFile | None:
        return None

    def url(self, project: str, area: str, name: str, download_name: str) -> str:
        raise LookupError("the project directory store has no URLs")

    def fetch(self, project: str, area: str, name: str, target: Path) -> bool:
        return False

    def delete(self, project: str, area: str, name: str) -> None:
        return None

    def listing(
        self, project: str, area: str, prefix: str = ""
    ) -> Iterator[tuple[str, StoredFile]]:
        return iter(())

    def delete_many(self, project: str, area: str, names: list[str]) -> None:
        return None


def file_store(spec: str, endpoint: str = "", presign_ttl: int = 3600) -> FileStore:
    """The store named by ``LABELGRAPH_FILE_STORE`` (ValueError for an unusable one)."""
    if not spec:
        return ProjectDirectoryStore()
    return _s3_store(spec, endpoint, presign_ttl)


@functools.lru_cache(maxsize=4)
def _s3_store(spec: str, endpoint: str, presign_ttl: int) -> FileStore:
    """One client per process and store (a boto3 client costs ~0.1 s to make; it is
    thread-safe). Cached here rather than in lifespan state so that services reach it from
    their settings alone."""
    from server.services.files.s3 import S3FileStore

    return S3FileStore.from_spec(spec, endpoint, presign_ttl)


def settings_file_store(settings: Settings) -> FileStore:
    return file_store(settings.file_store, settings.file_store_endpoint, settings.s3_presign_ttl)
