"""Import sources: uploaded files staged on disk, archives unpacked, files read as task items.

A request's files are first copied into a *staging* directory (never into ``upload/``
directly), named as Label Studio names them (rest-api.md §6.5): ``<first 6 hex digits of the
MD5 of the content>-<sanitised name>``; ``.zip`` archives are unpacked there too (member paths
kept, sanitised, no hash prefix), with limits on member count and unpacked size. Only a
successful import moves the staged files into ``upload/`` (see
:mod:`server.services.imports.importer`).

Readers turn one staged file into task items lazily (§6.4): JSON arrays are parsed
incrementally (``ijson``), CSV/TSV row by row, text files line by line, so memory stays bounded
whatever the file size.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import stat
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import ijson

from server.errors import DomainError
from server.services.imports.validation import UNDEFINED_KEY

COPY_CHUNK = 1024 * 1024
ARCHIVE_FORMATS = (".zip",)
TASK_LIST_FORMATS = (".csv", ".tsv", ".txt")  # read as task lists unless told otherwise
HYPERTEXT_FORMATS = (".html", ".htm", ".xml")
OBJECT_BY_FORMAT: dict[str, str] = {
    **dict.fromkeys(
        (".png", ".jpg", ".jpeg", ".tiff", ".tif", ".bmp", ".gif", ".svg", ".webp"), "Image"
    ),
    **dict.fromkeys((".wav", ".aiff", ".mp3", ".au", ".flac", ".m4a", ".ogg"), "Audio"),
    **dict.fromkeys(HYPERTEXT_FORMATS, "HyperText"),
    ".txt": "Text",
    ".csv": "TimeSeries",
    ".tsv": "TimeSeries",
}
MULTIPLE_KEYS = (
    "Your label config has more than one data keys, direct file upload supports only one data "
    "key. To import data with multiple data keys use JSON or CSV"
)
UPLOAD_URL_PREFIX = "/data/upload/"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
MAX_NAME = 200
# csv's default cell limit (128 KiB) is too small for long texts; pandas, which Label Studio
# used, has none.
csv.field_size_limit(2**31 - 1)


@dataclass(frozen=True)
class ImportLimits:
    """Size limits of one import (settings ``max_upload_files`` … ``max_archive_size``)."""

    max_files: int = 100
    max_tasks: int = 1_000_000
    max_archive_members: int = 10_000
    max_archive_size: int = 1024 * 1024 * 1024


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
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) > limits.max_archive_members:
                raise too_large(
                    f"Failed to parse input file {stored}: the archive has {len(members)} files, "
                    f"more than the limit of {limits.max_archive_members}"
                )
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


# --------------------------------------------------------------------------- readers


@dataclass
class ReadPosition:
    """How far the readers got, in bytes over all files (for progress bars)."""

    total: int = 0
    done: int = 0
    handle: IO[bytes] | None = None

    @property
    def current(self) -> int:
        try:
            return self.done + (self.handle.tell() if self.handle is not None else 0)
        except (OSError, ValueError):
            return self.done


def _wrap_file_item(item: Any) -> Any:
    """JSON files: an item without a truthy ``data`` is the data itself (Label Studio)."""
    if not isinstance(item, dict):
        return item
    data = item.get("data")
    if not data:
        return {"data": item}
    if not isinstance(data, dict):
        raise ValueError("Task item should be dict")
    return item


def _json_error(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def json_start(handle: IO[bytes]) -> bytes:
    """The first significant byte of a JSON document (after a BOM and whitespace); the handle
    is left where the parser should start."""
    head = handle.read(3)
    start = 3 if head == b"\xef\xbb\xbf" else 0
    handle.seek(start)
    while True:
        byte = handle.read(1)
        if byte not in (b" ", b"\t", b"\r", b"\n"):
            handle.seek(start)
            return byte
        start += 1


def json_items(handle: IO[bytes], name: str, file_rules: bool) -> Iterator[Any]:
    """Task items of a JSON document: a list of items or one object, parsed incrementally."""
    first = json_start(handle)
    if first == b"[":
        items = ijson.items(handle, "item", use_float=True, buf_size=256 * 1024)
    elif first == b"{":
        items = ijson.items(handle, "", use_float=True, buf_size=256 * 1024)
    elif not first:
        raise FileError(name, "the file is empty")
    else:
        raise FileError(name, "the file must hold a JSON object or a list of tasks")
    try:
        for item in items:
            yield _wrap_file_item(item) if file_rules else item
    except ijson.JSONError as exc:
        raise FileError(name, _json_error(exc)) from None
    except ValueError as exc:
        raise FileError(name, str(exc)) from None


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_TRUE = frozenset(("True", "TRUE", "true"))
_BOOL = frozenset(("True", "TRUE", "true", "False", "FALSE", "false"))


@dataclass
class _Column:
    ints: bool = True
    floats: bool = True
    bools: bool = True
    blanks: bool = False

    def see(self, value: str) -> bool:
        """Note one cell; True once the column is known to be text."""
        if value == "":
            self.blanks = True
            return False
        if self.ints and not _INT.fullmatch(value):
            self.ints = False
        if self.floats and not self.ints and not _FLOAT.fullmatch(value):
            self.floats = False
        if self.bools and value not in _BOOL:
            self.bools = False
        return not (self.ints or self.floats or self.bools)

    @property
    def settled(self) -> bool:
        """Known to be a text column: no later value changes that."""
        return not (self.ints or self.floats or self.bools)

    def converter(self) -> Callable[[str], Any] | None:
        """How cells of this column become values, as pandas typed them (then ``fillna('')``):
        integers (floats when the column has blanks), floats, booleans, else text."""
        blanks = self.blanks
        if self.ints and not self.bools:
            return _blank_or(float) if blanks else int
        if self.floats and not self.bools:
            return _blank_or(float) if blanks else float
        if self.bools and not (self.ints or self.floats):
            return _blank_or(_TRUE.__contains__)
        return None


def _blank_or(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def cell(value: str) -> Any:
        return "" if value == "" else convert(value)

    return cell


def _column_names(header: list[str]) -> list[str]:
    """pandas' header rules: blank names are ``Unnamed: <i>``, repeats get ``.1``, ``.2`` …"""
    names: list[str] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = raw if raw != "" else f"Unnamed: {index}"
        if name in seen:
            seen[name] += 1
            candidate = f"{name}.{seen[name]}"
            while candidate in seen:
                seen[name] += 1
                candidate = f"{name}.{seen[name]}"
            name = candidate
        seen.setdefault(name, 0)
        names.append(name)
    return names


def _text(handle: IO[bytes]) -> io.TextIOWrapper:
    handle.seek(0)
    return io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")


def _csv_types(handle: IO[bytes], delimiter: str, name: str) -> tuple[list[str], list[_Column]]:
    """First pass: the header and each column's type (pandas types whole columns)."""
    text = _text(handle)
    try:
        reader = csv.reader(text, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise FileError(name, "No columns to parse from file")
        columns = [_Column() for _ in header]
        open_columns = list(enumerate(columns))
        width = len(header)
        for row in reader:
            if not row:
                continue
            if len(row) > width:
                raise FileError(
                    name,
                    f"Error tokenizing data. Expected {width} fields in line "
                    f"{reader.line_num}, saw {len(row)}",
                )
            if len(row) < width:
                for column in columns[len(row) :]:
                    column.blanks = True
            settled = False
            for index, column in open_columns:
                if index < len(row) and column.see(row[index]):
                    settled = True
            if settled:
                open_columns = [(i, c) for i, c in open_columns if not c.settled]
        return header, columns
    finally:
        text.detach()


def csv_items(handle: IO[bytes], name: str, delimiter: str) -> Iterator[Any]:
    """One task per row; keys from the header row; numbers typed per column as pandas did."""
    try:
        header, columns = _csv_types(handle, delimiter, name)
        keys = _column_names(header)
        converters = [column.converter() for column in columns]
        typed = [(i, key, conv) for i, (key, conv) in enumerate(zip(keys, converters, strict=True))]
        plain = all(conv is None for conv in converters)
        width = len(keys)
        text = _text(handle)
        try:
            reader = csv.reader(text, delimiter=delimiter)
            next(reader)
            for row in reader:
                if not row:
                    continue
                if plain and len(row) == width:
                    yield {"data": dict(zip(keys, row, strict=True))}
                    continue
                data: dict[str, Any] = {}
                for index, key, convert in typed:
                    value = row[index] if index < len(row) else ""
                    data[key] = value if convert is None else convert(value)
                yield {"data": data}
        finally:
            text.detach()
    except (csv.Error, UnicodeDecodeError, ValueError) as exc:
        raise FileError(name, str(exc)) from None


def txt_items(handle: IO[bytes], name: str) -> Iterator[Any]:
    """One task per line: ``{"$undefined$": "<line>"}``."""
    handle.seek(0)
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline=None)
    try:
        for line in text:
            yield {"data": {UNDEFINED_KEY: line[:-1] if line.endswith("\n") else line}}
    except UnicodeDecodeError as exc:
        raise FileError(name, str(exc)) from None
    finally:
        text.detach()


_PRESERVED = re.compile(r"<(pre|textarea|script|style)\b.*?</\1\s*>", re.I | re.S)
_BETWEEN_TAGS = re.compile(r">\s+<")
_SPACES = re.compile(r"\s+")
_KEPT = re.compile(r"<\x00(\d+)\x00>")


def _squeeze(text: str) -> str:
    return _SPACES.sub(" ", _BETWEEN_TAGS.sub("><", text))


def minify_html(text: str) -> str:
    """Whitespace-minified markup (as htmlmin with ``remove_all_empty_space``): whitespace
    between tags removed, other runs collapsed to one space; ``pre``, ``textarea``, ``script``
    and ``style`` elements kept as they are."""
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"<\x00{len(kept) - 1}\x00>"

    squeezed = _squeeze(_PRESERVED.sub(keep, text.replace("\x00", ""))).strip()
    return _KEPT.sub(lambda match: kept[int(match.group(1))], squeezed)


def hypertext_items(handle: IO[bytes], name: str) -> Iterator[Any]:
    handle.seek(0)
    try:
        body = handle.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError(name, str(exc)) from None
    yield {"data": {UNDEFINED_KEY: minify_html(body)}}


def file_items(
    staging: Staging,
    staged: StagedFile,
    files_as_tasks_list: bool,
    data_key_count: int,
    position: ReadPosition,
) -> Iterator[Any]:
    """The task items of one staged file, by its format (§6.4)."""
    fmt = staged.format
    as_list = files_as_tasks_list and fmt in TASK_LIST_FORMATS
    if fmt != ".json" and not as_list and data_key_count > 1:
        raise FileError(staged.name, MULTIPLE_KEYS)
    if fmt != ".json" and not as_list and fmt not in HYPERTEXT_FORMATS:
        # Media and anything else: one task pointing to the hosted file.
        position.done += staged.size
        yield {"data": {UNDEFINED_KEY: UPLOAD_URL_PREFIX + staged.name}}
        return
    with staging.path(staged).open("rb") as handle:
        position.handle = handle
        try:
            if fmt == ".json":
                yield from json_items(handle, staged.name, file_rules=True)
            elif fmt == ".csv":
                yield from csv_items(handle, staged.name, ",")
            elif fmt == ".tsv":
                yield from csv_items(handle, staged.name, "\t")
            elif fmt == ".txt":
                yield from txt_items(handle, staged.name)
            else:
                yield from hypertext_items(handle, staged.name)
        finally:
            position.handle = None
    position.done += staged.size


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
