"""Readers: one staged file -> task items, lazily (rest-api.md §6.4).

JSON arrays are parsed incrementally (``ijson``), CSV/TSV row by row, text files line by
line, so memory stays bounded whatever the file size.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import ijson

from server.errors import DomainError
from server.json_depth import DEFAULT_MAX_JSON_DEPTH, DepthCheckedReader
from server.services.config.model import UNDEFINED_KEY
from server.services.imports.staging_dir import UPLOAD_URL_PREFIX, FileError, StagedFile, Staging

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
# csv's default cell limit (128 KiB) is too small for long texts; pandas, which Label Studio
# used, has none.
csv.field_size_limit(2**31 - 1)


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


def json_items(
    handle: IO[bytes], name: str, file_rules: bool, max_depth: int = DEFAULT_MAX_JSON_DEPTH
) -> Iterator[Any]:
    """Task items of a JSON document: a list of items or one object, parsed incrementally.
    The bytes are checked for nesting deeper than ``max_depth`` before the parser sees them
    (its memory grows with the square of the depth)."""
    first = json_start(handle)
    checked = DepthCheckedReader(handle, max_depth)
    if first == b"[":
        items = ijson.items(checked, "item", use_float=True, buf_size=256 * 1024)
    elif first == b"{":
        items = ijson.items(checked, "", use_float=True, buf_size=256 * 1024)
    elif not first:
        raise FileError(name, "the file is empty")
    else:
        raise FileError(name, "the file must hold a JSON object or a list of tasks")
    try:
        for item in items:
            yield _wrap_file_item(item) if file_rules else item
    except ijson.JSONError as exc:
        raise FileError(name, _json_error(exc)) from None
    except DomainError as exc:
        if isinstance(exc, FileError) or not file_rules:
            raise
        raise FileError(name, exc.message) from None  # nested too deeply
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


_PRESERVED_OPEN = re.compile(r"<(pre|textarea|script|style)\b", re.I)
_PRESERVED_CLOSE = {
    tag: re.compile(rf"</{tag}\s*>", re.I) for tag in ("pre", "textarea", "script", "style")
}
_BETWEEN_TAGS = re.compile(r">\s+<")
_SPACES = re.compile(r"\s+")
_KEPT = re.compile(r"<\x00(\d+)\x00>")


def _squeeze(text: str) -> str:
    return _SPACES.sub(" ", _BETWEEN_TAGS.sub("><", text))


def _preserved_spans(text: str) -> Iterator[tuple[int, int]]:
    """The ``pre``, ``textarea``, ``script`` and ``style`` elements of ``text``: each opening tag
    up to the first matching closing tag. Linear time: a search resumes where the last span
    ended, and a tag whose closing tag is missing is not searched for again (the lazy regex
    ``<(pre|…)\\b.*?</\\1\\s*>`` rescanned to the end from every opener: ``'<pre>' * 24000``
    took 9.7 s holding the GIL)."""
    unclosed: set[str] = set()
    position = 0
    while opener := _PRESERVED_OPEN.search(text, position):
        tag = opener.group(1).lower()
        position = opener.end()
        if tag in unclosed:
            continue
        closer = _PRESERVED_CLOSE[tag].search(text, position)
        if closer is None:
            unclosed.add(tag)
            continue
        yield opener.start(), closer.end()
        position = closer.end()


def minify_html(text: str) -> str:
    """Whitespace-minified markup (as htmlmin with ``remove_all_empty_space``): whitespace
    between tags removed, other runs collapsed to one space; ``pre``, ``textarea``, ``script``
    and ``style`` elements kept as they are."""
    text = text.replace("\x00", "")
    kept: list[str] = []
    parts: list[str] = []
    position = 0
    for start, end in _preserved_spans(text):
        parts.append(text[position:start])
        parts.append(f"<\x00{len(kept)}\x00>")
        kept.append(text[start:end])
        position = end
    parts.append(text[position:])
    squeezed = _squeeze("".join(parts)).strip()
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
    max_json_depth: int,
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
                yield from json_items(handle, staged.name, True, max_json_depth)
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
