"""The staging directory: uploaded files and archives kept on disk until an import.

A request's files are first copied into a *staging* directory (never into ``upload/``
directly), named as Label Studio names them (rest-api.md §6.5): ``<first 6 hex digits of the
MD5 of the content>-<sanitised name>``; ``.zip`` archives are unpacked there too (member paths
kept, sanitised, no hash prefix), with limits on member count and unpacked size. Only a
successful import moves the staged files into ``upload/`` (see
:mod:`server.services.imports.file_import`), served back through :func:`upload_path`.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from server.errors import DomainError
from server.json_depth import DEFAULT_MAX_JSON_DEPTH

COPY_CHUNK = 1024 * 1024
ARCHIVE_FORMATS = (".zip",)
UPLOAD_URL_PREFIX = "/data/upload/"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
MAX_NAME = 200


@dataclass(frozen=True)
class ImportLimits:
    """Size limits of one import (settings ``max_upload_files`` … ``max_archive_size``)."""

    max_files: int = 100
    max_tasks: int = 1_000_000
    max_archive_members: int = 10_000
    max_archive_size: int = 1024 * 1024 * 1024
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH


@dataclass(frozen=True)
class IncomingFile:
    """An uploaded file as the web layer hands it over: its client name and a binary stream."""

    name: str
    stream: IO[bytes]


@dataclass
class StagedFile:
    """A file waiting in a staging directory under the name it will have in ``upload/``."""

    name: str  # "2b9917-cat.jpg", or an archive member's sanitised path "images/cat.jpg"
    format: str  # lower-case extension with its dot ("" without one)
    size: int
    parse: bool = True  # False for an archive itself: stored, its members are read instead

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "format": self.format, "size": self.size, "parse": self.parse}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> StagedFile:
        return cls(str(value["name"]), str(value["format"]), int(value["size"]), value["parse"])


@dataclass
class Staging:
    """A directory holding one import's files until they are stored or dropped."""

    directory: Path
    files: list[StagedFile] = field(default_factory=list)

    @property
    def files_dir(self) -> Path:
        return self.directory / "files"

    def path(self, staged: StagedFile) -> Path:
        return self.files_dir / staged.name

    @property
    def tasks_path(self) -> Path:
        """Where a staged JSON body waits (staged imports of JSON tasks)."""
        return self.directory / "tasks.json"

    def add(self, staged: StagedFile) -> None:
        """Add a file; a later file of the same name replaces the earlier one."""
        self.files = [f for f in self.files if f.name != staged.name] + [staged]

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def new_staging(root: Path) -> Staging:
    directory = root / uuid.uuid4().hex
    (directory / "files").mkdir(parents=True)
    return Staging(directory)


def open_staging(root: Path, name: str, files: list[StagedFile]) -> Staging:
    if not re.fullmatch(r"[0-9a-f]{32}", name):
        raise ValueError(f"not a staging directory name: {name!r}")
    return Staging(root / name, files)


# --------------------------------------------------------------------------- names


def file_format(name: str) -> str:
    """The lower-case extension with its dot (Label Studio matched it case-sensitively)."""
    suffix = PurePosixPath(name).suffix
    return suffix.lower() if len(suffix) > 1 else ""


def safe_name(name: str) -> str:
    """A file name reduced to ``[A-Za-z0-9_.-]`` (werkzeug's ``secure_filename`` rules, as
    Label Studio used): path separators and spaces become ``_``, other characters are dropped,
    leading/trailing dots and underscores are stripped. Never empty, never a path."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    for separator in ("/", "\\"):
        text = text.replace(separator, " ")
    text = _UNSAFE.sub("", "_".join(text.split())).strip("._")
    if not text:
        text = "file"
    if len(text) > MAX_NAME:
        suffix = file_format(text)[:16]
        text = text[: MAX_NAME - len(suffix)] + suffix
    return text


def url_file_name(url: str) -> str:
    """The name a URL import's file gets before the hash prefix: the URL without its query or
    fragment, sanitised (``https://example.com/a/b.csv`` -> ``https_example.com_a_b.csv``)."""
    return safe_name(url.split("#", 1)[0].split("?", 1)[0])


def _member_path(raw: str) -> str | None:
    """An archive member's path made safe for ``upload/``; None for entries to skip (macOS
    resource forks and hidden files). Traversal and absolute paths are refused."""
    text = raw.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise ValueError(f"absolute member path {raw!r}")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"member path {raw!r} leaves the archive")
    if not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
        return None
    return "/".join(safe_name(p) for p in parts)


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) to a place under ``root``."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


# --------------------------------------------------------------------------- staging files


class FileError(DomainError):
    """A file that cannot be read: ``Failed to parse input file <name>: <reason>`` (§6.4)."""

    def __init__(self, name: str, reason: str):
        message = f"Failed to parse input file {name}: {reason}"
        super().__init__("invalid_tasks", message, {"errors": [message], "file": name})


def too_large(message: str) -> DomainError:
    return DomainError("too_large", message, {"errors": [message]})


def _copy_hashed(stream: IO[bytes], target: Path) -> tuple[str, int]:
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with target.open("wb") as out:
        while chunk := stream.read(COPY_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def stage_file(staging: Staging, name: str, stream: IO[bytes], limits: ImportLimits) -> None:
    """Copy one uploaded (or downloaded) file into ``staging`` as ``<md5[:6]>-<name>``; unpack
    ``.zip`` archives beside it."""
    clean = safe_name(PurePosixPath(name.replace("\\", "/")).name or name)
    incoming = staging.directory / f"incoming-{uuid.uuid4().hex}"
    try:
        md5, size = _copy_hashed(stream, incoming)
        stored = f"{md5[:6]}-{clean}"
        incoming.replace(staging.files_dir / stored)
    finally:
        incoming.unlink(missing_ok=True)
    fmt = file_format(stored)
    staging.add(StagedFile(stored, fmt, size, parse=fmt not in ARCHIVE_FORMATS))
    if fmt == ".rar":
        raise FileError(stored, "RAR archives are not supported; upload a .zip archive")
    if fmt in ARCHIVE_FORMATS:
        _unpack_zip(staging, stored, limits)


def _is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return bool(mode) and stat.S_ISLNK(mode)


def _unpack_zip(staging: Staging, stored: str, limits: ImportLimits) -> None:
    root = staging.files_dir
    try:
        with zipfile.ZipFile(root / stored) as archive:
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
            unpacked = 0
            for info in members:
                if _is_link(info):
                    raise FileError(stored, f"member {info.filename!r} is a link")
                try:
                    relative = _member_path(info.filename)
                except ValueError as exc:
                    raise FileError(stored, f"unsafe {exc}") from None
                if relative is None:
                    continue
                target = root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                if not inside(root, target.parent) or target.is_symlink():
                    raise FileError(stored, f"unsafe member path {info.filename!r}")
                unpacked = _extract(archive, info, target, unpacked, stored, limits)
                staging.add(StagedFile(relative, file_format(relative), info.file_size))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError) as exc:
        raise FileError(stored, str(exc) or type(exc).__name__) from None
    except (EOFError, OSError) as exc:
        raise FileError(stored, f"the archive is damaged ({exc})") from None


def _archive_too_large(stored: str, limits: ImportLimits) -> DomainError:
    return too_large(
        f"Failed to parse input file {stored}: the archive unpacks to more than "
        f"{limits.max_archive_size} bytes"
    )


def _extract(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    unpacked: int,
    stored: str,
    limits: ImportLimits,
) -> int:
    """Copy one member out, counting real bytes (declared sizes may lie)."""
    with archive.open(info) as source, target.open("wb") as out:
        while chunk := source.read(COPY_CHUNK):
            unpacked += len(chunk)
            if unpacked > limits.max_archive_size:
                raise _archive_too_large(stored, limits)
            out.write(chunk)
    return unpacked


def upload_path(upload_dir: Path, name: str) -> Path | None:
    """The file ``upload/<name>`` for ``GET /data/upload/<name>``, or None: no such regular
    file, or a name that would leave ``upload/`` (``..``, absolute, hidden, links out)."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/"):
        return None
    parts = name.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    path = upload_dir.joinpath(*parts)
    if not inside(upload_dir, path) or not path.is_file():
        return None
    return path
