"""Files into a staging directory: uploads copied under their hashed names, ``.zip`` archives
unpacked beside them.

Every file gets Label Studio's upload name (rest-api.md §6.5) ``<first 6 hex digits of the MD5
of the content>-<sanitised name>``; archive members too, in their (sanitised) folders:
``images/cat.jpg`` becomes ``images/2b9917-cat.jpg``, so a member can never take the name of
an earlier upload with other content. Archives are refused before :mod:`zipfile` builds
anything when their central directory is over the limits (:mod:`.zip_directory`); unpacked
bytes are counted as they are written (declared sizes may lie), per archive
(``max_archive_size``) and over the whole import (``max_unpacked_size``).
"""

from __future__ import annotations

import hashlib
import re
import stat
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from server.errors import DomainError
from server.services.imports.staging_dir import (
    ARCHIVE_FORMATS,
    COPY_CHUNK,
    MAX_UPLOAD_PATH,
    FileError,
    ImportLimits,
    StagedFile,
    Staging,
    UnsafePath,
    file_format,
    make_directories,
    safe_name,
    too_large,
)
from server.services.imports.zip_directory import DirectoryRefused, check_central_directory


def _copy_hashed(stream: IO[bytes], target: Path, budget: _Budget | None = None) -> str:
    """Copy ``stream`` to a new file ``target``; the MD5 hex digest of what was copied."""
    digest = hashlib.md5(usedforsecurity=False)
    with target.open("xb") as out:
        while chunk := stream.read(COPY_CHUNK):
            if budget is not None:
                budget.spend(len(chunk))
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _place_hashed(
    staging: Staging, stream: IO[bytes], folder: list[str], name: str, budget: _Budget | None = None
) -> tuple[str, int]:
    """Copy ``stream`` into ``staging`` as ``<folder>/<md5[:6]>-<name>``; (stored name, size)."""
    incoming = staging.directory / f"incoming-{uuid.uuid4().hex}"
    try:
        md5 = _copy_hashed(stream, incoming, budget)
        size = incoming.stat().st_size
        stored = "/".join([*folder, f"{md5[:6]}-{name}"])
        directory = make_directories(staging.files_dir, folder)
        incoming.replace(directory / f"{md5[:6]}-{name}")
    finally:
        incoming.unlink(missing_ok=True)
    return stored, size


def stage_file(staging: Staging, name: str, stream: IO[bytes], limits: ImportLimits) -> None:
    """Copy one uploaded (or downloaded) file into ``staging`` as ``<md5[:6]>-<name>``; unpack
    ``.zip`` archives beside it."""
    clean = safe_name(PurePosixPath(name.replace("\\", "/")).name or name)
    stored, size = _place_hashed(staging, stream, [], clean)
    fmt = file_format(stored)
    staging.add(StagedFile(stored, fmt, size, parse=fmt not in ARCHIVE_FORMATS))
    if fmt == ".rar":
        raise FileError(stored, "RAR archives are not supported; upload a .zip archive")
    if fmt in ARCHIVE_FORMATS:
        _unpack_zip(staging, stored, limits)


# --------------------------------------------------------------------------- archives


def _member_path(raw: str) -> list[str] | None:
    """An archive member's path parts made safe for ``upload/``; None for entries to skip
    (macOS resource forks and hidden files). Traversal and absolute paths are refused."""
    text = raw.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise ValueError(f"absolute member path {raw!r}")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"member path {raw!r} leaves the archive")
    if not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
        return None
    safe = [safe_name(p) for p in parts]
    if len("/".join(safe).encode("ascii")) > MAX_UPLOAD_PATH - 16:
        raise ValueError(f"member path {raw[:64]!r}… is longer than {MAX_UPLOAD_PATH} bytes")
    return safe


def _is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return bool(mode) and stat.S_ISLNK(mode)


class _Budget:
    """Unpacked bytes of one archive and of the whole import, checked as they are written."""

    def __init__(self, staging: Staging, stored: str, limits: ImportLimits) -> None:
        self.staging = staging
        self.stored = stored
        self.limits = limits
        self.archive = 0

    def spend(self, size: int) -> None:
        self.archive += size
        self.staging.unpacked += size
        if self.archive > self.limits.max_archive_size:
            raise _archive_too_large(self.stored, self.limits)
        if self.staging.unpacked > self.limits.max_unpacked_size:
            raise _import_too_large(self.stored, self.limits)


def _unpack_zip(staging: Staging, stored: str, limits: ImportLimits) -> None:
    try:
        with (staging.files_dir / stored).open("rb") as handle:
            try:
                check_central_directory(handle, limits.max_archive_members)
            except DirectoryRefused as exc:
                if exc.too_large:
                    raise too_large(f"Failed to parse input file {stored}: {exc.reason}") from None
                raise FileError(stored, exc.reason) from None
            with zipfile.ZipFile(handle) as archive:
                _unpack_members(staging, archive, stored, limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError) as exc:
        raise FileError(stored, str(exc) or type(exc).__name__) from None
    except (EOFError, OSError) as exc:
        raise FileError(stored, f"the archive is damaged ({exc})") from None


def _unpack_members(
    staging: Staging, archive: zipfile.ZipFile, stored: str, limits: ImportLimits
) -> None:
    entries = archive.infolist()
    # Directory entries count too: a million of them cost memory all the same.
    if len(entries) > limits.max_archive_members:
        raise too_large(
            f"Failed to parse input file {stored}: the archive has {len(entries)} "
            f"entries, more than the limit of {limits.max_archive_members}"
        )
    members = [info for info in entries if not info.is_dir()]
    declared = sum(info.file_size for info in members)
    if declared > limits.max_archive_size:
        raise _archive_too_large(stored, limits)
    if staging.unpacked + declared > limits.max_unpacked_size:
        raise _import_too_large(stored, limits)
    budget = _Budget(staging, stored, limits)
    for info in members:
        if _is_link(info):
            raise FileError(stored, f"member {info.filename!r} is a link")
        try:
            parts = _member_path(info.filename)
        except ValueError as exc:
            raise FileError(stored, f"unsafe {exc}") from None
        if parts is None:
            continue
        try:
            with archive.open(info) as source:
                name, size = _place_hashed(staging, source, parts[:-1], parts[-1], budget)
        except UnsafePath:
            raise FileError(stored, f"unsafe member path {info.filename!r}") from None
        staging.add(StagedFile(name, file_format(name), size))


def _archive_too_large(stored: str, limits: ImportLimits) -> DomainError:
    return too_large(
        f"Failed to parse input file {stored}: the archive unpacks to more than "
        f"{limits.max_archive_size} bytes"
    )


def _import_too_large(stored: str, limits: ImportLimits) -> DomainError:
    return too_large(
        f"Failed to parse input file {stored}: the archives of this import unpack to more "
        f"than {limits.max_unpacked_size} bytes (LABELGRAPH_MAX_IMPORT_UNPACKED_SIZE)"
    )
