"""Expiry of the shared file store's copies (``LABELGRAPH_FILE_STORE=s3://…``).

Every process sweeps its own project directory; the copies in a shared store are swept here, by
any process (deleting what is already gone is harmless, so processes need not take turns):

* export files older than the export TTL (the job's ``expires_at`` is the same instant);
* staged-import files whose staged import is gone (applied, expired, or never recorded because
  its process died) and that are older than :data:`GRACE`. Each directory's row is written
  before its files are put, and the listing is taken before the rows are read, so a file whose
  row is missing at that read belongs to an import that is gone for good — the grace only keeps
  the sweep clear of clocks that disagree.
"""

from __future__ import annotations

from server.models import StagedImport
from server.services.files.store import EXPORT, IMPORT, FileStore

GRACE = 600  # seconds


def sweep_shared_exports(files: FileStore, project: str, ttl: int, now: float) -> int:
    """Delete the project's export copies older than ``ttl``; returns how many."""
    old = [
        name for name, stored in files.listing(project, EXPORT) if stored.modified_at < now - ttl
    ]
    files.delete_many(project, EXPORT, old)
    return len(old)


def sweep_shared_staging(files: FileStore, project: str, project_id: int, now: float) -> int:
    """Delete the project's staged-import copies that no staged import refers to; returns how
    many files."""
    listed = [
        (name, stored)
        for name, stored in files.listing(project, IMPORT)
        if stored.modified_at < now - GRACE
    ]
    if not listed:
        return 0
    live = set(
        StagedImport.select(StagedImport.directory)
        .where(StagedImport.project == project_id)
        .scalars()
    )
    gone = [name for name, _ in listed if name.split("/", 1)[0] not in live]
    files.delete_many(project, IMPORT, gone)
    return len(gone)
