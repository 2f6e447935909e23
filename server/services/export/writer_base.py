"""What every export writer shares (export-formats.md §1): the writer interface, its context
(the open zip, a work folder, media), item extraction and streaming JSON helpers.

Each writer gets the open zip file and a private work folder, takes tasks in id order through
``add`` (True when the task contributed to the output) and completes the zip in ``finish``.
Nothing grows with the number of tasks except what a format must keep (COCO categories, the CSV
column list, the zip's own directory): big outputs are streamed into the zip or spooled to files
in the work folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from server.errors import DomainError
from server.ls_json import is_cancelled
from server.services.config.model import LabelConfig
from server.services.export.formats import data_keys
from server.services.export.media import Media, MediaResolver
from server.services.export.zip_writer import EntryStream, ZipWriter

log = logging.getLogger(__name__)

BUFFER_SIZE = 1024 * 1024
# Deflate level of every zip entry. Level 1 compresses a JSON export about 3x faster than the
# default (6) for a zip ~40% larger (still ~15x smaller than stored entries, which would make
# a 1M-task JSON export ~850 MB on disk): see bench/export_workload.py. 0 stores entries.
ZIP_LEVEL = 1


@dataclass
class ExportTask:
    """A task as exports see it: current data, meta, completions in Label Studio's form (payload
    plus ``id`` and ``created_at``) in id order."""

    id: int
    data: dict[str, Any]
    meta: Any
    completions: list[dict[str, Any]]


@dataclass
class Item:
    """The converter's item (§1.2): the latest usable completion's values, by control."""

    task_id: int
    data: dict[str, Any]
    output: dict[str, list[dict[str, Any]]]


@dataclass
class WriterContext:
    zip: ZipWriter
    config: LabelConfig
    work_dir: Path
    media: MediaResolver
    format: str
    include_unlabeled: bool = False
    escape_formulas: bool = False  # CSV/TSV: prefix formula-like cells with "'"
    resources: list[Any] = field(default_factory=list)

    @property
    def data_key(self) -> str | None:
        keys = data_keys(self.config)
        return keys[0] if keys else None

    def open(self, name: str) -> EntryStream:
        """A buffered stream into a new zip entry (only one can be open at a time)."""
        stream = self.zip.open(name)
        self.resources.append(stream)
        return stream

    def spool(self, name: str) -> Any:
        """A new binary file in the work folder, closed by :meth:`close_all` on failure."""
        handle = (self.work_dir / name).open("wb", buffering=BUFFER_SIZE)
        self.resources.append(handle)
        return handle

    def close_all(self) -> None:
        """After a failure: close whatever the writer left open, so the zip can close."""
        for resource in reversed(self.resources):
            try:
                if isinstance(resource, EntryStream):
                    resource.abort()
                else:
                    resource.close()
            except Exception:  # best effort: the export is failing anyway
                log.debug("export: closing %r after a failure failed", resource, exc_info=True)

    def add_file(self, name: str, path: Path) -> None:
        """Copy ``path`` into the zip as ``name`` (once: later copies of the same name are
        skipped)."""
        if not self.zip.contains(name):
            self.zip.copy_file(name, path, remember=True)

    def add_bytes(self, name: str, content: bytes) -> None:
        self.zip.write_bytes(name, content)

    def mkdir(self, name: str) -> None:
        self.zip.mkdir(name)

    def fail(self, task_id: int, message: str) -> DomainError:
        return DomainError(
            "conflict",
            f"Cannot export task {task_id} as {self.format}: {message}",
            {"task_id": task_id, "format": self.format},
        )


ZipStream = EntryStream  # the stream a writer gets from WriterContext.open


class ByteSink(Protocol):
    """Where bytes go: a zip entry's stream, a file, a worker's part."""

    def write(self, data: bytes, /) -> Any: ...


class Writer:
    def __init__(self, ctx: WriterContext) -> None:
        self.ctx = ctx

    def add(self, task: ExportTask) -> bool:
        raise NotImplementedError

    def add_page(self, tasks: list[ExportTask]) -> int:
        """Add a page of tasks; returns how many contributed to the output."""
        return sum(self.add(task) for task in tasks)

    def finish(self) -> None:
        raise NotImplementedError


# --- item extraction (§1.2) -----------------------------------------------------------------


def _created(completion: dict[str, Any]) -> float:
    value = completion.get("created_at")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return 0


def latest_completion(task: ExportTask) -> dict[str, Any] | None:
    """The non-cancelled completion with the greatest ``created_at`` (first one on ties)."""
    completions = task.completions
    if len(completions) == 1:  # the usual task: its one completion, unless cancelled
        only = completions[0]
        return None if is_cancelled(only) else only
    best: dict[str, Any] | None = None
    for completion in completions:
        if is_cancelled(completion):
            continue
        if best is None or _created(completion) > _created(best):
            best = completion
    return best


def extract_item(task: ExportTask, config: LabelConfig, *, unlabeled: bool = False) -> Item | None:
    """The task's item, or None when it has no usable completion (unless ``unlabeled``: then
    an item without output)."""
    completion = latest_completion(task)
    if completion is None:
        return Item(task.id, task.data, {}) if unlabeled else None
    output: dict[str, list[dict[str, Any]]] = {}
    result = completion.get("result")
    for entry in result if isinstance(result, list) else []:
        if not isinstance(entry, dict):
            continue
        name = entry.get("from_name")
        control = config.controls.get(name) if isinstance(name, str) else None
        if control is None:
            continue
        raw = entry.get("value")
        value = dict(raw) if isinstance(raw, dict) else {}
        value["type"] = control.tag
        for key in ("original_width", "original_height"):
            if key in entry:
                value[key] = entry[key]
        output.setdefault(control.name, []).append(value)
    return Item(task.id, task.data, output)


def values_of(item: Item, tags: tuple[str, ...]) -> list[dict[str, Any]]:
    """The values of the first control (in result order) whose tag is one of ``tags``.

    Label Studio takes the first control whatever its tag and fails when it is of the wrong
    kind; when the first control has a fitting tag, both agree.
    """
    for values in item.output.values():
        if values and values[0].get("type") in tags:
            return values
    return []


# --- JSON helpers ----------------------------------------------------------------------------


def json_indented(value: Any, *, sort_keys: bool = False) -> bytes:
    """``json.dumps(value, indent=2, ensure_ascii=False)`` as UTF-8 bytes (orjson when it can)."""
    option = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        return orjson.dumps(value, option=option)
    except (orjson.JSONEncodeError, TypeError):
        text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=sort_keys)
        return text.encode("utf-8")


class JsonArray:
    """A JSON array written element by element, laid out as ``json.dumps(indent=2)`` does
    at nesting ``depth``."""

    def __init__(self, out: Any, depth: int = 0) -> None:
        self.out = out
        self.inner = b"\n" + b"  " * (depth + 1)
        self.outer = b"\n" + b"  " * depth
        self.count = 0

    def append(self, element: bytes) -> None:
        self.append_indented(element.replace(b"\n", self.inner))

    def append_indented(self, element: bytes) -> None:
        """Append an element already laid out at this array's depth."""
        self.out.write((b"[" if self.count == 0 else b",") + self.inner + element)
        self.count += 1

    def extend(self, elements: list[Any], *, sort_keys: bool = False) -> None:
        """Append many values at once: one ``orjson.dumps`` of the whole list, whose indented
        layout is the array's own at depth 0, spliced in (per element when orjson refuses)."""
        if not elements:
            return
        if self.outer != b"\n":
            for element in elements:
                self.append(json_indented(element, sort_keys=sort_keys))
            return
        option = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort_keys else 0)
        try:
            text = orjson.dumps(elements, option=option)
        except (orjson.JSONEncodeError, TypeError):
            for element in elements:
                self.append(json_indented(element, sort_keys=sort_keys))
            return
        # text is b"[\n  A,\n  B\n]": drop the closing b"\n]" and, after earlier elements,
        # turn the opening b"[" into the separating b",".
        self.out.write(text[:-2] if self.count == 0 else b"," + text[1:-2])
        self.count += len(elements)

    def close(self) -> None:
        self.out.write(self.outer + b"]" if self.count else b"[]")


def unavailable_reason(ctx: WriterContext) -> str:
    if ctx.media.fetch_remote:
        return "is neither an uploaded file nor downloadable"
    return (
        "is not an uploaded file (/data/upload/…), and fetching remote files is off "
        "(LABELGRAPH_EXPORT_FETCH_REMOTE)"
    )


# --- shared by the image formats ---------------------------------------------------------------


def place_media(ctx: WriterContext, reference: Any, folder: str) -> tuple[str, Media | None]:
    """Copy a referenced image into ``folder/``: (path to write in the output, the file or None).
    An unresolved reference is kept as it is, as Label Studio does."""
    media = ctx.media.resolve(reference)
    if media is None:
        return (reference if isinstance(reference, str) else json.dumps(reference)), None
    ctx.add_file(f"{folder}/{media.stored_name}", media.path)
    return f"{folder}/{media.stored_name}", media
