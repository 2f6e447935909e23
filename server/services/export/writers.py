"""Export writers: one class per format, fed one task at a time (export-formats.md §1, §4).

Each writer gets the open zip file and a private work folder, takes tasks in id order through
``add`` (True when the task contributed to the output) and completes the zip in ``finish``.
Nothing grows with the number of tasks except what a format must keep (COCO categories, the CSV
column list, the zip's own directory): big outputs are streamed into the zip or spooled to files
in the work folder.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from server.errors import DomainError
from server.ls_json import is_cancelled
from server.services.config.model import LabelConfig
from server.services.export import brush
from server.services.export.formats import data_keys
from server.services.export.media import Media, MediaResolver

log = logging.getLogger(__name__)

BUFFER_SIZE = 1024 * 1024
_TOKEN = re.compile(r"\S+")


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
    zip: zipfile.ZipFile
    config: LabelConfig
    work_dir: Path
    media: MediaResolver
    format: str
    include_unlabeled: bool = False
    resources: list[Any] = field(default_factory=list)

    @property
    def data_key(self) -> str | None:
        keys = data_keys(self.config)
        return keys[0] if keys else None

    def open(self, name: str) -> ZipStream:
        """A buffered stream into a new zip entry (only one can be open at a time)."""
        stream = ZipStream(self.zip.open(file_info(name), "w", force_zip64=True))
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
                resource.close()
            except Exception:  # best effort: the export is failing anyway
                log.debug("export: closing %r after a failure failed", resource, exc_info=True)

    def add_file(self, name: str, path: Path) -> None:
        """Copy ``path`` into the zip as ``name`` (once: later copies of the same name are
        skipped)."""
        if name in self.zip.NameToInfo:
            return
        info = file_info(name)
        info.file_size = path.stat().st_size  # lets zipfile pick ZIP64 for huge files
        with path.open("rb") as source, self.zip.open(info, "w") as target:
            while chunk := source.read(BUFFER_SIZE):
                target.write(chunk)

    def add_bytes(self, name: str, content: bytes) -> None:
        self.zip.writestr(file_info(name), content)

    def mkdir(self, name: str) -> None:
        if name + "/" not in self.zip.NameToInfo:
            self.zip.mkdir(name)

    def fail(self, task_id: int, message: str) -> DomainError:
        return DomainError(
            "conflict",
            f"Cannot export task {task_id} as {self.format}: {message}",
            {"task_id": task_id, "format": self.format},
        )


def file_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


class ZipStream:
    """A buffered binary writer over one zip entry."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)
        if self.size >= BUFFER_SIZE:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.target.write(b"".join(self.parts))
            self.parts, self.size = [], 0

    def close(self) -> None:
        self.flush()
        self.target.close()


class Writer:
    def __init__(self, ctx: WriterContext) -> None:
        self.ctx = ctx

    def add(self, task: ExportTask) -> bool:
        raise NotImplementedError

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
    best: dict[str, Any] | None = None
    for completion in task.completions:
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


def pretty(values: list[dict[str, Any]]) -> Any:
    """JSON_MIN's value of one control (§4.2)."""
    out: list[Any] = []
    tag = None
    for value in values:
        plain = dict(value)
        tag = plain.pop("type", None)
        choices = plain.get("choices")
        if tag == "Choices" and isinstance(choices, list) and len(choices) == 1:
            out.append(choices[0])
        else:
            out.append(plain)
    return out[0] if tag == "Choices" and len(out) == 1 else out


def min_row(item: Item) -> dict[str, Any]:
    row = dict(item.data)
    row["id"] = item.task_id
    for name, values in item.output.items():
        row[name] = pretty(values)
    return row


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
        self.out.write((b"[" if self.count == 0 else b",") + self.inner)
        self.out.write(element.replace(b"\n", self.inner))
        self.count += 1

    def close(self) -> None:
        self.out.write(self.outer + b"]" if self.count else b"[]")


# --- JSON, JSON_MIN (§4.1, §4.2) -------------------------------------------------------------


class JsonWriter(Writer):
    """Every labeled task with all its completions, keys sorted (Label Studio's stored form)."""

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.stream = ctx.open("result.json")
        self.array = JsonArray(self.stream)

    def add(self, task: ExportTask) -> bool:
        if not task.completions and not self.ctx.include_unlabeled:
            return False
        document: dict[str, Any] = {"completions": task.completions, "data": task.data}
        document["id"] = task.id
        if task.meta is not None:
            document["meta"] = task.meta
        self.array.append(json_indented(document, sort_keys=True))
        return True

    def finish(self) -> None:
        self.array.close()
        self.stream.close()


class JsonMinWriter(Writer):
    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.stream = ctx.open("result.json")
        self.array = JsonArray(self.stream)

    def add(self, task: ExportTask) -> bool:
        item = extract_item(task, self.ctx.config, unlabeled=self.ctx.include_unlabeled)
        if item is None:
            return False
        self.array.append(json_indented(min_row(item)))
        return True

    def finish(self) -> None:
        self.array.close()
        self.stream.close()


# --- CSV, TSV (§4.3, §4.4) -------------------------------------------------------------------


def data_cell(value: Any) -> str:
    """A task data value as Label Studio's tabular writer renders it: strings as they are,
    null empty, booleans ``True``/``False``, numbers as numbers, objects and lists in Python
    repr."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return repr(value)


def control_cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class CsvWriter(Writer):
    """Rows are spooled to a JSON-lines file while the column list grows, then written with
    the header (the columns are known only after the last row)."""

    delimiter = ","

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.columns: dict[str, int] = {}
        self.spool_path = ctx.work_dir / "rows.jsonl"
        self.spool = ctx.spool("rows.jsonl")
        self.rows = 0

    def add(self, task: ExportTask) -> bool:
        item = extract_item(task, self.ctx.config, unlabeled=self.ctx.include_unlabeled)
        if item is None:
            return False
        cells: dict[str, str] = {key: data_cell(value) for key, value in item.data.items()}
        cells["id"] = str(item.task_id)
        for name, values in item.output.items():
            cells[name] = control_cell(pretty(values))
        row: list[str] = [""] * len(self.columns)
        for key, cell in cells.items():
            index = self.columns.get(key)
            if index is None:
                index = self.columns[key] = len(self.columns)
                row.append("")
            row[index] = cell
        self.spool.write(orjson.dumps(row) + b"\n")
        self.rows += 1
        return True

    def finish(self) -> None:
        self.spool.close()
        stream = self.ctx.open("result.csv")
        text = _TextSink(stream)
        if not self.rows:
            text.write("\n")
        else:
            writer = csv.writer(text, delimiter=self.delimiter, lineterminator="\n")
            width = len(self.columns)
            writer.writerow(list(self.columns))
            with self.spool_path.open("rb") as spool:
                for line in spool:
                    row = orjson.loads(line)
                    writer.writerow(row + [""] * (width - len(row)))
        stream.close()


class TsvWriter(CsvWriter):
    delimiter = "\t"


class _TextSink:
    """What ``csv.writer`` writes to: text encoded as UTF-8 into a :class:`ZipStream`."""

    def __init__(self, stream: ZipStream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(text.encode("utf-8"))
        return len(text)


# --- CONLL2003 (§4.5) ------------------------------------------------------------------------


def tokens_and_tags(text: str, spans: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """Converter 0.0.23rc3's tokenisation (runs of non-whitespace) and BIO tagging."""
    usable = [
        s
        for s in spans
        if _is_int(s.get("start"))
        and _is_int(s.get("end"))
        and isinstance(s.get("labels"), list)
        and s["labels"]
    ]
    usable.sort(key=lambda s: s["start"])
    index = 0
    prefix = "B-"
    for match in _TOKEN.finditer(text):
        token, start, end = match.group(), match.start(), match.end()
        if not usable:
            yield token, "O"
            continue
        span = usable[index]
        first, last = span["start"], span["end"] - 1
        if start > last:
            while index + 1 < len(usable):
                index += 1
                span = usable[index]
                first, last = span["start"], span["end"] - 1
                prefix = "B-"
                if start <= last:
                    break
        if end < first:
            yield token, "O"
        elif first <= end and last >= start:
            yield token, f"{prefix}{span['labels'][0]}"
            prefix = "I-"
        else:
            yield token, "O"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ConllWriter(Writer):
    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.stream = ctx.open("result.conll")
        self.stream.write(b"-DOCSTART- -X- O\n")
        self.key = ctx.data_key

    def add(self, task: ExportTask) -> bool:
        item = extract_item(task, self.ctx.config)
        if item is None:
            return False
        raw = item.data.get(self.key) if self.key is not None else None
        text = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
        lines = [
            f"{token} -X- _ {tag}\n"
            for token, tag in tokens_and_tags(text, values_of(item, ("Labels",)))
        ]
        lines.append("\n")
        self.stream.write("".join(lines).encode("utf-8"))
        return True

    def finish(self) -> None:
        self.stream.close()


# --- ASR_MANIFEST (§4.9) ---------------------------------------------------------------------


class AsrManifestWriter(Writer):
    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        ctx.mkdir("audio")
        self.key = ctx.data_key
        self.spool_path = ctx.work_dir / "manifest.jsonl"
        self.spool = ctx.spool("manifest.jsonl")

    def add(self, task: ExportTask) -> bool:
        from server.services.export.media import wav_duration

        item = extract_item(task, self.ctx.config)
        if item is None:
            return False
        values = values_of(item, ("TextArea",))
        if not values:
            log.warning("export: task %s has no transcription; left out", task.id)
            return False
        reference = item.data.get(self.key) if self.key is not None else None
        media = self.ctx.media.resolve(reference)
        if media is None:
            raise self.ctx.fail(task.id, f"its audio {reference!r} {unavailable_reason(self.ctx)}")
        duration = wav_duration(media.path)
        if duration is None:
            raise self.ctx.fail(task.id, f"its audio {reference!r} is not a readable WAV file")
        self.ctx.add_file(f"audio/{media.stored_name}", media.path)
        text = values[0].get("text")
        line = {
            "audio_filepath": f"audio/{media.stored_name}",
            "duration": duration,
            "text": text[0] if isinstance(text, list | str) and text else "",
        }
        self.spool.write(json.dumps(line).encode("ascii") + b"\n")
        return True

    def finish(self) -> None:
        self.spool.close()
        stream = self.ctx.open("manifest.json")
        with self.spool_path.open("rb") as spool:
            while chunk := spool.read(BUFFER_SIZE):
                stream.write(chunk)
        stream.close()


def unavailable_reason(ctx: WriterContext) -> str:
    if ctx.media.fetch_remote:
        return "is neither an uploaded file nor downloadable"
    return (
        "is not an uploaded file (/data/upload/…), and fetching remote files is off "
        "(LABELGRAPH_EXPORT_FETCH_REMOTE)"
    )


# --- BRUSH_TO_NUMPY, BRUSH_TO_PNG (§4.8) ------------------------------------------------------


_PATH_UNSAFE = re.compile(r"[/\\\x00]")


class BrushWriter(Writer):
    """Every completion (cancelled ones too), every ``brushlabels`` result, one file each."""

    extension = ".npy"

    def encode(self, mask: bytes, width: int, height: int) -> bytes:
        return brush.npy_bytes(mask, width, height)

    def add(self, task: ExportTask) -> bool:
        written = False
        for completion in task.completions:
            counters: dict[str, int] = {}
            result = completion.get("result")
            for entry in result if isinstance(result, list) else []:
                if not isinstance(entry, dict) or entry.get("type") != "brushlabels":
                    continue
                value = entry.get("value")
                if not isinstance(value, dict) or "rle" not in value:
                    continue
                labels = value.get("brushlabels")
                labels = labels if isinstance(labels, list) else []
                prefix = f"{entry.get('from_name', '')}-" + "-".join(str(x) for x in labels)
                number = counters.get(prefix, 0)
                counters[prefix] = number + 1
                try:
                    mask, width, height = brush.mask_from_result(entry)
                except brush.RLEError as exc:
                    message = f"completion {completion.get('id')}: {exc}"
                    raise self.ctx.fail(task.id, message) from None
                name = f"task-{task.id}-completion-{completion.get('id')}-{prefix}-{number}"
                name = _PATH_UNSAFE.sub("_", name)
                self.ctx.add_bytes(name + self.extension, self.encode(mask, width, height))
                written = True
        return written

    def finish(self) -> None:
        return None


class BrushPngWriter(BrushWriter):
    extension = ".png"

    def encode(self, mask: bytes, width: int, height: int) -> bytes:
        return brush.png_bytes(mask, width, height)


# --- shared by the image formats ---------------------------------------------------------------


def place_media(ctx: WriterContext, reference: Any, folder: str) -> tuple[str, Media | None]:
    """Copy a referenced image into ``folder/``: (path to write in the output, the file or None).
    An unresolved reference is kept as it is, as Label Studio does."""
    media = ctx.media.resolve(reference)
    if media is None:
        return (reference if isinstance(reference, str) else json.dumps(reference)), None
    ctx.add_file(f"{folder}/{media.stored_name}", media.path)
    return f"{folder}/{media.stored_name}", media
