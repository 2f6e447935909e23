"""The staging directory: uploaded files and archives kept on disk until an import.

A request's files are first copied into a *staging* directory (never into ``upload/``
directly), named as Label Studio names them (rest-api.md §6.5): ``<first 6 hex digits of the
MD5 of the content>-<sanitised name>``; ``.zip`` archives are unpacked there too
(:mod:`server.services.imports.unpacking`). Only a successful import moves the staged files
into ``upload/`` (see :mod:`server.services.imports.file_import`), served back through
:func:`upload_path`.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from server.errors import DomainError
from server.json_depth import DEFAULT_MAX_JSON_DEPTH

COPY_CHUNK = 1024 * 1024
ARCHIVE_FORMATS = (".zip",)
UPLOAD_URL_PREFIX = "/data/upload/"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
MAX_NAME_BYTES = 200  # + "<md5[:6]>-" stays well under NAME_MAX (255 bytes)
MAX_SUFFIX = 16
NAME_HASH = 8
NAME_MAX = 255  # bytes of one path component on Linux and macOS
MAX_UPLOAD_PATH = 1024  # bytes of a name under upload/ (archive members keep their folders)


@dataclass(frozen=True)
class ImportLimits:
    """Size limits of one import (settings ``max_upload_files`` … ``max_archive_size``)."""

    max_files: int = 100
    max_tasks: int = 1_000_000
    max_archive_members: int = 10_000
    max_archive_size: int = 1024 * 1024 * 1024
    max_unpacked_size: int = 1024 * 1024 * 1024  # all archives of one import together
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
    unpacked: int = 0  # bytes written so far unpacking this import's archives

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


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    for separator in ("/", "\\"):
        text = text.replace(separator, " ")
    return _UNSAFE.sub("", "_".join(text.split())).strip("._")


def safe_name(name: str) -> str:
    """A file name reduced to ``[A-Za-z0-9_.-]`` (werkzeug's ``secure_filename`` rules, as
    Label Studio used): path separators and spaces become ``_``, other characters are dropped,
    leading/trailing dots and underscores are stripped. Never empty, never a path.

    A name whose stem vanishes keeps its extension (``名前.txt`` -> ``file.txt``). Names are
    bounded in bytes (:data:`MAX_NAME_BYTES`, so a stored name with its hash prefix stays under
    the file system's 255-byte ``NAME_MAX``); a cut name keeps its extension and gets a hash of
    the whole name, so two long names that differ only in their tails stay apart."""
    text = _clean(name)
    suffix = PurePosixPath(name.replace("\\", "/")).suffix
    clean_suffix = "." + _clean(suffix) if len(suffix) > 1 and _clean(suffix) else ""
    if clean_suffix and not text.endswith(clean_suffix):
        stem = text.removesuffix(clean_suffix[1:]).rstrip("._")
        text = (stem or "file") + clean_suffix
    if not text:
        text = "file"
    if len(text.encode("ascii")) > MAX_NAME_BYTES:
        kept_suffix = PurePosixPath(text).suffix[:MAX_SUFFIX]
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:NAME_HASH]
        stem = text[: MAX_NAME_BYTES - len(kept_suffix) - NAME_HASH - 1].rstrip("._")
        text = f"{stem}-{digest}{kept_suffix}"
    return text


def url_file_name(url: str) -> str:
    """The name a URL import's file gets before the hash prefix: the URL without its query or
    fragment, sanitised (``https://example.com/a/b.csv`` -> ``https_example.com_a_b.csv``)."""
    return safe_name(url.split("#", 1)[0].split("?", 1)[0])


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


class UnsafePath(ValueError):
    """A path that would leave its root or go through a link or a file."""


def make_directories(root: Path, parts: Sequence[str]) -> Path:
    """``root/parts[0]/parts[1]/…``, its missing directories created one level at a time.
    Each level is checked (without following links) before anything is created below it: a
    link or a file on the way is refused (:class:`UnsafePath`), so nothing is ever created
    through a symlink; a level is created only when absent, then checked again."""
    current = root
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\\" in part:
            raise UnsafePath(f"unsafe path part {part!r}")
        current = current / part
        try:
            mode = current.lstat().st_mode
        except FileNotFoundError:
            current.mkdir(exist_ok=True)
            mode = current.lstat().st_mode  # whatever won a race must be a directory too
        if not stat.S_ISDIR(mode):
            raise UnsafePath(f"{'/'.join(parts)} goes through a link or a file")
    return current


def upload_name_parts(name: str) -> list[str] | None:
    """The folders and file name of an upload's name, or None for a name no upload can have
    (empty, absolute, ``..``, hidden parts, too long)."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/"):
        return None
    if len(name.encode("utf-8", "surrogatepass")) > MAX_UPLOAD_PATH:
        return None
    parts = name.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    if any(len(part.encode("utf-8", "surrogatepass")) > NAME_MAX for part in parts):
        return None  # no such file can exist (and asking the file system is ENAMETOOLONG)
    return parts


def upload_path(upload_dir: Path, name: str) -> Path | None:
    """The file ``upload/<name>`` for ``GET /data/upload/<name>``, or None: no such regular
    file, or a name that would leave ``upload/`` (``..``, absolute, hidden, links out)."""
    parts = upload_name_parts(name)
    if parts is None:
        return None
    path = upload_dir.joinpath(*parts)
    try:
        if not inside(upload_dir, path) or not path.is_file():
            return None
    except (OSError, ValueError):
        return None
    return path
