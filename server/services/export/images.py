"""Object detection exports: COCO, Pascal VOC and YOLO (export-formats.md §4.6, §4.7, §5).

Image sizes come from the results' ``original_width``/``original_height`` (as in Label Studio);
when a result lacks them, the image itself is measured if it is an uploaded file (or a fetched
one, with remote fetching on). Images are copied into ``images/``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import math
import sqlite3
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii as _ascii_string
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import orjson

from server.services.config.model import LabelConfig
from server.services.export.media import Media, image_info
from server.services.export.writer_base import (
    BUFFER_SIZE,
    ExportTask,
    JsonArray,
    Writer,
    WriterContext,
    extract_item,
    latest_completion,
    place_media,
    unavailable_reason,
    values_of,
)

log = logging.getLogger(__name__)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def _plain(value: Any) -> bool:
    """An int or float (not a bool): what ``_number`` takes, tested without a call chain."""
    kind = type(value)
    return kind is float or kind is int


_PLAIN_TYPES = frozenset((int, float))  # what ``_plain`` takes, tested without a call


def _label(value: dict[str, Any], key: str) -> str | None:
    labels = value.get(key)
    if isinstance(labels, list) and labels:
        return str(labels[0])
    return None


class ImageWriter(Writer):
    """What COCO, VOC and YOLO share: the data key, image placement and image sizes."""

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.key = ctx.data_key
        ctx.mkdir("images")

    def reference(self, data: dict[str, Any]) -> Any:
        return data.get(self.key) if self.key is not None else None

    def size(
        self, task_id: int, first: dict[str, Any], media: Media | None, reference: Any
    ) -> tuple[float, float]:
        width, height = _number(first.get("original_width")), _number(first.get("original_height"))
        if width is not None and height is not None:
            return width, height
        info = image_info(media.path) if media is not None else None
        if info is None:
            where = "cannot be read" if media is not None else unavailable_reason(self.ctx)
            raise self.ctx.fail(
                task_id,
                f"its result has no original_width/original_height and the image "
                f"{reference!r} {where}",
            )
        return info.width, info.height

    def box(self, task_id: int, value: dict[str, Any]) -> tuple[float, float, float, float]:
        x: Any = value.get("x")
        y: Any = value.get("y")
        w: Any = value.get("width")
        h: Any = value.get("height")
        plain = _PLAIN_TYPES
        if type(x) in plain and type(y) in plain and type(w) in plain and type(h) in plain:
            return x, y, w, h  # the usual case, without the checking call chain
        numbers = [_number(value.get(k)) for k in ("x", "y", "width", "height")]
        if any(n is None for n in numbers):
            raise self.ctx.fail(task_id, "a rectangle lacks x, y, width or height")
        x, y, w, h = numbers
        assert x is not None and y is not None and w is not None and h is not None
        return x, y, w, h


def staged_name(reference: str, task_id: int) -> str:
    """The base name without extension that VOC and YOLO name their per-image files after."""
    base = reference[reference.rfind("/") + 1 :]  # os.path.basename
    dot = base.rfind(".")  # os.path.splitext: an extension follows something but dots
    name = base[:dot] if dot > 0 and base[:dot].strip(".") else base
    name = name.replace("\x00", "_")[:200]
    return name if name not in ("", ".", "..") else f"task-{task_id}"


# --- COCO ------------------------------------------------------------------------------------


class CocoWriter(ImageWriter):
    """``result.json`` with images, categories, annotations and info. The images and
    annotations arrays are spooled to files and joined at the end."""

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.images_file = ctx.spool("images.json")
        self.annotations_file = ctx.spool("annotations.json")
        self.images = JsonArray(self.images_file, depth=1)
        self.annotations = JsonArray(self.annotations_file, depth=1)
        self.categories: dict[str, int] = {}

    def add(self, task: ExportTask) -> bool:
        record = self.record(task)
        if record is None:
            return False
        self.emit(record)
        return True

    def record(self, task: ExportTask) -> CocoRecord | None:
        """The task's image and annotations, without their ids (see :class:`CocoRecord`);
        None when the task has no rectangle or polygon."""
        item = extract_item(task, self.ctx.config)
        if item is None or not item.output:
            return None
        values = values_of(item, ("RectangleLabels", "PolygonLabels"))
        if not values:
            return None
        reference = self.reference(item.data)
        file_name, media = place_media(self.ctx, reference, "images")
        width, height = self.size(task.id, values[0], media, reference)
        annotations: list[tuple[str, bytes]] = []
        for value in values:
            if "rectanglelabels" in value:
                label = _label(value, "rectanglelabels")
                if label is None:
                    continue
                x, y, w, h = self.box(task.id, value)
                bx, by = int(x / 100 * width), int(y / 100 * height)
                bw, bh = int(w / 100 * width), int(h / 100 * height)
                # bbox and area are ints: the annotation's layout is fixed
                annotations.append((label, _RECTANGLE_REST % (bx, by, bw, bh, bw * bh)))
                continue
            if "polygonlabels" in value:
                label = _label(value, "polygonlabels")
                points = _points(value.get("points"))
                if label is None or not points:
                    continue
                xs = [px / 100 * width for px, _ in points]
                ys = [py / 100 * height for _, py in points]
                segmentation = [[c for pair in zip(xs, ys, strict=True) for c in pair]]
                bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
                area = _polygon_area(xs, ys)
            else:
                continue
            annotation = {
                "id": 0,
                "image_id": 0,
                "category_id": 0,
                "segmentation": segmentation,
                "bbox": bbox,
                "ignore": 0,
                "iscrowd": 0,
                "area": area,
            }
            rendered = _coco_json(annotation).replace(b"\n", b"\n    ")
            annotations.append((label, rendered[len(_ZERO_HEAD) :]))
        image = (_number_text(width), _number_text(height), _ascii_bytes(file_name))
        return image, annotations

    def emit(self, record: CocoRecord) -> None:
        """The record's image and annotations, numbered, into their arrays."""
        (width, height, file_name), annotations = record
        image_id = self.images.count
        self.images.append_indented(_IMAGE % (width, height, image_id, file_name))
        categories = self.categories
        for label, rest in annotations:
            category = categories.setdefault(label, len(categories))
            self.annotations.append_indented(
                _HEAD % (self.annotations.count, image_id, category) + rest
            )

    def finish(self) -> None:
        self.images.close()
        self.annotations.close()
        self.images_file.close()
        self.annotations_file.close()
        stream = self.ctx.open("result.json")
        stream.write(COCO_START)
        _copy(self.ctx.work_dir / "images.json", stream)
        stream.write(coco_categories(self.categories))
        _copy(self.ctx.work_dir / "annotations.json", stream)
        stream.write(coco_info())
        stream.close()


# result.json: its start, then the images array, coco_categories, the annotations array and
# coco_info.
COCO_START = b'{\n  "images": '
# An image's or annotation's start in its array but the first (which starts with "[").
COCO_SEPARATOR = b",\n    "


def coco_categories(categories: dict[str, int]) -> bytes:
    """What comes between the images and the annotations arrays: the categories."""
    out = io.BytesIO()
    out.write(b',\n  "categories": ')
    array = JsonArray(out, depth=1)
    for name, ident in categories.items():
        array.append(_coco_json({"id": ident, "name": name}))
    array.close()
    out.write(b',\n  "annotations": ')
    return out.getvalue()


def coco_info() -> bytes:
    """What follows the annotations array: the info, and the document's end."""
    info = {"year": dt.date.today().year, "version": "1.0", "contributor": "Label Studio"}
    return b',\n  "info": ' + _coco_json(info).replace(b"\n", b"\n  ") + b"\n}"


def coco_image(record: CocoRecord, image_id: int) -> bytes:
    (width, height, file_name), _ = record
    return _IMAGE % (width, height, image_id, file_name)


def coco_annotation(rest: bytes, ident: int, image_id: int, category: int) -> bytes:
    return _HEAD % (ident, image_id, category) + rest


def _coco_json(value: Any) -> bytes:
    """``json.dumps(value, indent=2)`` as bytes, written without json's pure-Python indenting
    encoder: that one is ~4x slower, and each call leaves a cycle of closures that only the
    cyclic collector frees, which the exporter pauses (its memory grew ~6 KB per task)."""
    return _indented(value, "").encode("ascii")


# An annotation as _coco_json writes it, laid out for its array (depth 1: every line after
# the first indented by four spaces more): its ids (_HEAD), then the rest, which for a
# rectangle (all numbers ints) is fixed (_RECTANGLE_REST); and an image.
_HEAD = b'{\n  "id": %d,\n  "image_id": %d,\n  "category_id": %d,\n  '.replace(b"\n", b"\n    ")
_ZERO_HEAD = _HEAD % (0, 0, 0)
_RECTANGLE_REST = (
    b'"segmentation": [],\n'
    b'  "bbox": [\n    %d,\n    %d,\n    %d,\n    %d\n  ],\n  "ignore": 0,\n  "iscrowd": 0,\n'
    b'  "area": %d\n}'
).replace(b"\n", b"\n    ")
_IMAGE = b'{\n  "width": %s,\n  "height": %s,\n  "id": %d,\n  "file_name": %s\n}'.replace(
    b"\n", b"\n    "
)
# A task's image (width, height and file name as JSON texts) and annotations (label, and the
# annotation's text after its ids): all of it but the ids, which depend on the tasks before.
CocoRecord = tuple[tuple[bytes, bytes, bytes], list[tuple[str, bytes]]]


def _number_text(value: Any) -> bytes:
    if type(value) is int:
        return b"%d" % value
    if type(value) is float:
        return _float_text(value).encode("ascii")
    return _coco_json(value)


def _ascii_bytes(text: str) -> bytes:
    return _ascii_string(text).encode("ascii")


def _float_text(value: float) -> str:
    """json's rendering of a float (``allow_nan``)."""
    if value != value:
        return "NaN"
    if value == math.inf:
        return "Infinity"
    if value == -math.inf:
        return "-Infinity"
    return float.__repr__(value)


def _indented(value: Any, indent: str) -> str:
    if isinstance(value, str):
        return _ascii_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float_text(value)
    inner = indent + "  "
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        if not value:
            return "{}"
        items = [f"{inner}{_ascii_string(k)}: {_indented(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [inner + _indented(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    text = json.dumps(value, indent=2)  # anything else (non-string keys…): json itself
    return text.replace("\n", "\n" + indent)


def _copy(path: Path, stream: Any) -> None:
    with path.open("rb") as source:
        while chunk := source.read(BUFFER_SIZE):
            stream.write(chunk)


def _points(raw: Any) -> list[tuple[float, float]]:
    points = []
    for point in raw if isinstance(raw, list) else []:
        if isinstance(point, list | tuple) and len(point) >= 2:
            x, y = _number(point[0]), _number(point[1])
            if x is not None and y is not None:
                points.append((x, y))
    return points


def _polygon_area(xs: list[float], ys: list[float]) -> float:
    """Shoelace formula, as the converter computes it (with ``np.roll``)."""
    n = len(xs)
    forward = sum(xs[i] * ys[i - 1] for i in range(n))
    backward = sum(ys[i] * xs[i - 1] for i in range(n))
    return 0.5 * abs(forward - backward)


# --- Pascal VOC ------------------------------------------------------------------------------


def _xml_text(value: Any) -> str:
    return escape(str(value), {'"': "&quot;"})


def voc_document(
    image_name: str,
    width: float,
    height: float,
    depth: int,
    objects: Sequence[tuple[str, ...]],
) -> str:
    """The converter's minidom output: one element per line, no indentation."""
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<annotation>",
        "<folder>images</folder>",
        f"<filename>{_xml_text(image_name)}</filename>",
        "<source>",
        "<database>MyDatabase</database>",
        "<annotation>COCO2017</annotation>",
        "<image>flickr</image>",
        "<flickrid>NULL</flickrid>",
        "</source>",
        "<owner>",
        "<flickrid>NULL</flickrid>",
        "<name>Label Studio</name>",
        "</owner>",
        "<size>",
        f"<width>{_xml_text(width)}</width>",
        f"<height>{_xml_text(height)}</height>",
        f"<depth>{depth}</depth>",
        "</size>",
        "<segmented>0</segmented>",
    ]
    for name, xmin, ymin, xmax, ymax in objects:
        lines += [
            "<object>",
            f"<name>{_xml_text(name)}</name>",
            "<pose>Unspecified</pose>",
            "<truncated>0</truncated>",
            "<difficult>0</difficult>",
            "<bndbox>",
            f"<xmin>{xmin}</xmin>",
            f"<ymin>{ymin}</ymin>",
            f"<xmax>{xmax}</xmax>",
            f"<ymax>{ymax}</ymax>",
            "</bndbox>",
            "</object>",
        ]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


class StagedWriter(ImageWriter):
    """Per-image files are kept by name until the end, so that a later task with the same
    image name replaces an earlier one (as Label Studio overwrites it), then zipped in the
    order their names first came. They are staged in a private SQLite file in the work folder
    (name as primary key, an upsert per file, a page at a time): memory stays flat however many
    images there are, where a dict of them held ~150 bytes per image (~1 GB with the zip's own
    directory at a million), and files in the work folder cost ~1 ms of system calls each."""

    folder = ""
    extension = ""
    always_create_folder = True
    BATCH = 5000

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.stage = sqlite3.connect(ctx.work_dir / "staged.sqlite", isolation_level=None)
        ctx.resources.append(self.stage)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16384"):
            self.stage.execute(f"PRAGMA {pragma}")
        self.stage.execute("CREATE TABLE staged (name TEXT PRIMARY KEY, content BLOB NOT NULL)")
        self.stage.execute("BEGIN")
        self.pending: list[tuple[str, bytes]] = []
        self.staged_any = False

    def stage_file(self, reference: str, task_id: int, text: str) -> None:
        self.pending.append((staged_name(reference, task_id) + self.extension, text.encode()))
        if len(self.pending) >= self.BATCH:
            self.flush_staged()

    def flush_staged(self) -> None:
        if self.pending:
            self.stage.executemany(
                "INSERT INTO staged (name, content) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET content = excluded.content",
                self.pending,
            )
            self.pending = []
            self.staged_any = True

    def finish(self) -> None:
        self.flush_staged()
        if self.always_create_folder or self.staged_any:
            self.ctx.mkdir(self.folder)
        rows = self.stage.execute("SELECT name, content FROM staged ORDER BY rowid")
        for name, content in rows:
            self.ctx.add_bytes(f"{self.folder}/{name}", content)
        self.stage.close()


class VocWriter(StagedWriter):
    folder = "Annotations"
    extension = ".xml"
    always_create_folder = False  # the converter makes it with the first annotation

    def add(self, task: ExportTask) -> bool:
        item = extract_item(task, self.ctx.config)
        if item is None or not item.output:
            return False
        values = values_of(item, ("RectangleLabels",))
        if not values:
            return False
        reference = self.reference(item.data)
        file_name, media = place_media(self.ctx, reference, "images")
        width, height = self.size(task.id, values[0], media, reference)
        depth = 3
        if media is not None:
            info = image_info(media.path)
            depth = info.channels if info is not None else 3
        objects = []
        for value in values:
            label = _label(value, "rectanglelabels")
            if label is None:
                continue
            x, y, w, h = self.box(task.id, value)
            xmin, ymin = int(x / 100 * width), int(y / 100 * height)
            xmax, ymax = xmin + int(w / 100 * width), ymin + int(h / 100 * height)
            objects.append((label, str(xmin), str(ymin), str(xmax), str(ymax)))
        image_name = staged_name(file_name, task.id)
        self.stage_file(file_name, task.id, voc_document(image_name, width, height, depth, objects))
        return True


# --- YOLO (an extension: not in Label Studio 0.9) ---------------------------------------------


class YoloWriter(StagedWriter):
    """``labels/<image>.txt`` (``class x_center y_center width height``, 0-1), ``classes.txt``,
    ``notes.json`` and ``images/``. Classes are the RectangleLabels labels of the config,
    sorted (as later Label Studio versions number them); labels found only in results follow
    in order of appearance. Rectangles of every RectangleLabels control are written."""

    folder = "labels"
    extension = ".txt"

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.classes = yolo_classes(ctx.config)
        # the RectangleLabels controls' names, by the name results give
        self.rectangles = {
            key: control.name
            for key, control in ctx.config.controls.items()
            if control.tag == "RectangleLabels"
        }

    def add(self, task: ExportTask) -> bool:
        return self.add_page([task]) == 1

    def add_page(self, tasks: list[ExportTask]) -> int:
        """Each task's rectangles (:meth:`boxes`), then their numbers' texts for the whole page
        in one :func:`float_texts`, then each task's file staged."""
        numbers: list[float] = []  # each line's four numbers, for the whole page
        found = [(task, boxes) for task in tasks if (boxes := self.boxes(task, numbers))]
        if not found:
            return 0
        texts = float_texts(numbers)
        at = 0
        for task, boxes in found:
            lines = []
            for _, ident in boxes:
                lines.append(
                    f"{ident} {texts[at]} {texts[at + 1]} {texts[at + 2]} {texts[at + 3]}\n"
                )
                at += 4
            if len(boxes) > 1 and any(control != boxes[0][0] for control, _ in boxes):
                groups: dict[str, list[str]] = {}  # grouped by control, in order of appearance
                for (control, _), line in zip(boxes, lines, strict=True):
                    groups.setdefault(control, []).append(line)
                lines = [line for group in groups.values() for line in group]
            file_name, _ = place_media(self.ctx, self.reference(task.data), "images")
            self.stage_file(file_name, task.id, "".join(lines))
        return len(found)

    def boxes(self, task: ExportTask, numbers: list[float]) -> list[tuple[str, int]]:
        """One pass over the latest completion's result (what ``extract_item`` would group by
        control, without its copies): each rectangle's control and class, its four numbers
        appended to ``numbers``."""
        completion = latest_completion(task)
        if completion is None:
            return []
        result = completion.get("result")
        rectangles = self.rectangles
        classes = self.classes
        boxes: list[tuple[str, int]] = []  # each line's control and class
        for entry in result if isinstance(result, list) else ():
            if not isinstance(entry, dict):
                continue
            name = entry.get("from_name")
            control = rectangles.get(name) if isinstance(name, str) else None
            if control is None:
                continue
            value = entry.get("value")
            if not isinstance(value, dict):
                continue
            labels = value.get("rectanglelabels")
            if not isinstance(labels, list) or not labels:
                continue
            label = str(labels[0])
            x, y, w, h = self.box(task.id, value)
            ident = classes.get(label)
            if ident is None:
                ident = classes[label] = len(classes)
            boxes.append((control, ident))
            numbers += ((x + w / 2) / 100, (y + h / 2) / 100, w / 100, h / 100)
        return boxes

    def finish(self) -> None:
        super().finish()
        yolo_finish(self.ctx, self.classes)


def float_texts(values: list[float]) -> list[str]:
    """``f"{value}"`` (``repr``) of each number, by one ``orjson.dumps`` of them all: its
    shortest round-trip digits (Ryu) are ``repr``'s, ~9x faster, in fixed notation, which
    ``repr`` also uses from 1e-4 to 1e16; outside it (an exponent, or 0.0000… below 1e-4,
    which a number like 10.00001 also shows), or for NaN and infinities, ``repr`` itself.
    YOLO's lines were ~60 % float formatting."""
    text = orjson.dumps(values)
    if b"e" in text or b"null" in text or b"0.0000" in text:
        return [repr(value) for value in values]
    return text[1:-1].decode().split(",")


def yolo_classes(config: LabelConfig) -> dict[str, int]:
    """The config's RectangleLabels labels, sorted, numbered."""
    labels = {
        label
        for control in config.controls.values()
        if control.tag == "RectangleLabels"
        for label in control.labels
    }
    return {label: index for index, label in enumerate(sorted(labels))}


def yolo_finish(ctx: WriterContext, classes: dict[str, int]) -> None:
    """The entries after the label files: ``classes.txt`` and ``notes.json``."""
    ctx.add_bytes("classes.txt", "".join(f"{name}\n" for name in classes).encode("utf-8"))
    notes = {
        "categories": [{"id": ident, "name": name} for name, ident in classes.items()],
        "info": {"year": dt.date.today().year, "version": "1.0", "contributor": "Label Studio"},
    }
    ctx.add_bytes("notes.json", json.dumps(notes, indent=2).encode("ascii"))
