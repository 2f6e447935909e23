"""The text export writers: JSON, JSON_MIN, CSV, TSV and CONLL2003 (export-formats.md §4.1-4.5)."""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from server.services.config.model import LabelConfig
from server.services.export.writer_base import (
    BUFFER_SIZE,
    ByteSink,
    ExportTask,
    Item,
    JsonArray,
    Writer,
    WriterContext,
    extract_item,
    json_indented,
    latest_completion,
    values_of,
)

_TOKEN = re.compile(r"\S+")


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


# --- JSON, JSON_MIN (§4.1, §4.2) -------------------------------------------------------------


class JsonWriter(Writer):
    """Every labeled task with all its completions, keys sorted (Label Studio's stored form)."""

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.stream = ctx.open("result.json")
        self.array = JsonArray(self.stream)

    def add(self, task: ExportTask) -> bool:
        return self.add_page([task]) == 1

    def add_page(self, tasks: list[ExportTask]) -> int:
        documents = [self.document(task) for task in tasks]
        kept = [document for document in documents if document is not None]
        self.array.extend(kept, sort_keys=True)
        return len(kept)

    def document(self, task: ExportTask) -> dict[str, Any] | None:
        if not task.completions and not self.ctx.include_unlabeled:
            return None
        document: dict[str, Any] = {"completions": task.completions, "data": task.data}
        document["id"] = task.id
        if task.meta is not None:
            document["meta"] = task.meta
        return document

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


def _plain_encoder() -> Callable[[Any], str]:
    """``json.dumps`` with its default options, without its per-call setup: ``json.dumps``
    builds a new C encoder for every value (half the cost of a small one). Values read from
    the database have no cycles, so the cycle check (``markers``) is off."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: json itself
        return json.dumps
    encode = make(
        None,
        json.JSONEncoder().default,
        json.encoder.encode_basestring_ascii,
        None,
        ": ",
        ", ",
        False,
        False,
        True,
    )
    return lambda value: "".join(encode(value, 0))


json_dumps = _plain_encoder()


def control_values(
    result: Any, config: LabelConfig, kinds: dict[str, tuple[str, bool]] | None = None
) -> dict[str, Any]:
    """``pretty`` of each control's values of ``result`` by control name, as
    ``extract_item`` + ``pretty`` make them (in the order the controls first appear).

    ``kinds`` (:func:`control_kinds` of ``config``, made once by the caller) saves looking
    the controls up in the config's read-only mapping; the loop is written for the usual
    result (each control once, a single choice or a plain value): it was ~40 % of a CSV
    row's time."""
    if kinds is None:
        kinds = control_kinds(config)
    out: dict[str, Any] = {}  # a Choices' one value as it is, any other control's in a list
    listed: set[str] = set()  # Choices met more than once: their values in a list
    for entry in result if isinstance(result, list) else ():
        if not isinstance(entry, dict):
            continue
        try:
            kind = kinds.get(entry.get("from_name"))  # type: ignore[arg-type]
        except TypeError:  # an unhashable name (kinds' keys are all strings)
            continue
        if kind is None:
            continue
        control, choices = kind
        raw = entry.get("value")
        if choices and isinstance(raw, dict):
            picked = raw.get("choices")
            if isinstance(picked, list) and len(picked) == 1:
                value: Any = picked[0]
            else:
                value = _plain_value(raw, entry)
        else:
            value = _plain_value(raw, entry)
        if control not in out:
            out[control] = value if choices else [value]
        elif choices and control not in listed:
            out[control] = [out[control], value]
            listed.add(control)
        else:
            out[control].append(value)
    return out


def _plain_value(raw: Any, entry: dict[str, Any]) -> dict[str, Any]:
    if (
        type(raw) is dict
        and "type" not in raw
        and "original_width" not in entry
        and "original_height" not in entry
    ):
        return raw  # the value as it is (only made JSON after: no copy)
    plain = dict(raw) if isinstance(raw, dict) else {}
    if "type" in plain:
        del plain["type"]
    if "original_width" in entry:
        plain["original_width"] = entry["original_width"]
    if "original_height" in entry:
        plain["original_height"] = entry["original_height"]
    return plain


def control_kinds(config: LabelConfig) -> dict[str, tuple[str, bool]]:
    """Each control's name -> (its name, whether it is a Choices)."""
    return {
        key: (control.name, control.tag == "Choices") for key, control in config.controls.items()
    }


# Cells a spreadsheet may run as a formula (OWASP "CSV Injection"): escaped with a leading
# apostrophe unless they are plain numbers (a negative amount is no formula).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


_FORMULA_FIRST = frozenset(_FORMULA_START)


# A cell that starts like a formula, in cells joined by NUL after a NUL (a cell holding a NUL
# may match falsely: its rows are then checked cell by cell, which is all it costs).
_FORMULA_CELL = re.compile(r"\x00[=+\-@\t\r]")


def _formula_in(rows: list[list[str]]) -> bool:
    """Whether a cell of ``rows`` may need escaping: one search over them all (nearly always
    none, where checking cell by cell took ~1 us a row)."""
    return (
        _FORMULA_CELL.search("\x00" + "\x00".join(itertools.chain.from_iterable(rows))) is not None
    )


@functools.cache
def _needs_quotes(delimiter: str) -> re.Pattern[str]:
    return re.compile("[" + re.escape(delimiter) + '"\n]')


def csv_lines(rows: list[list[str]], delimiter: str) -> str | None:
    """What ``csv.writer(delimiter=delimiter, lineterminator="\n").writerows(rows)`` writes
    (a cell holding the delimiter, a quote or a line feed quoted, its quotes doubled), built a
    column at a time: a column without such cells is taken as it is, one whose cells all need
    quotes is quoted in one replace over them all. ~0.7 us a row where ``csv`` took ~3 us.
    None when ``csv`` must write them itself: rows of different widths or of one cell (an
    empty one is written ``""``), or cells that are not all text."""
    if not rows:
        return ""
    width = len(rows[0])
    if width < 2 or len(set(map(len, rows))) != 1:
        return None
    columns: list[Any] = list(zip(*rows, strict=True))
    for index, column in enumerate(columns):
        try:
            joined = "\x00".join(column)
        except TypeError:  # a cell that is not text
            return None
        if delimiter not in joined and '"' not in joined and "\n" not in joined:
            continue
        needs = list(map(_needs_quotes(delimiter).search, column))
        if all(needs) and joined.count("\x00") == len(column) - 1:  # no NUL in a cell
            quoted = '"' + joined.replace('"', '""').replace("\x00", '"\x00"') + '"'
            columns[index] = quoted.split("\x00")
        else:
            columns[index] = [
                '"' + cell.replace('"', '""') + '"' if need else cell
                for cell, need in zip(column, needs, strict=True)
            ]
    return "\n".join(map(delimiter.join, zip(*columns, strict=True))) + "\n"


class RowWriter:
    """``csv.writer`` rows ending in ``\n``, with every cell holding a ``\r`` quoted too.

    With ``lineterminator="\n"`` the csv module leaves a bare ``\r`` unquoted, and readers
    take it for a line break that splits the row; a writer whose terminator is ``\r\n``
    quotes both characters, so such rows are written one by one with it and their ending is
    rewritten. Rows without any ``\r`` (nearly all) are written in batches, by
    :func:`csv_lines` (or ``writerows`` where it declines)."""

    def __init__(self, sink: TextSink, delimiter: str, escape_formulas: bool) -> None:
        self.sink = sink
        self.delimiter = delimiter
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, delimiter=delimiter, lineterminator="\r\n")
        self.plain_writer = csv.writer(self.buffer, delimiter=delimiter, lineterminator="\n")
        self.escape_formulas = escape_formulas

    def escape(self, row: list[str]) -> list[str]:
        if not self.escape_formulas:
            return row
        return [
            "'" + cell if cell[:1] in _FORMULA_FIRST and not _PLAIN_NUMBER.fullmatch(cell) else cell
            for cell in row
        ]

    def writerow(self, row: list[str]) -> None:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerow(self.escape(row))
        self.sink.write(self.buffer.getvalue()[:-2] + "\n")

    def writerows(self, rows: list[list[str]]) -> None:
        cells = rows
        if self.escape_formulas and _formula_in(rows):
            cells = [self.escape(row) for row in rows]
        text = csv_lines(cells, self.delimiter)
        if text is None:
            self.buffer.seek(0)
            self.buffer.truncate()
            self.plain_writer.writerows(cells)
            text = self.buffer.getvalue()
        if "\r" in text:  # a cell holds a \r: these rows one by one
            for row in rows:
                self.writerow(row)
            return
        self.sink.write(text)


class CsvWriter(Writer):
    """Rows are written as CSV to a spool file page by page while the column list grows, then
    copied after the header (the columns are known only after the last row). A page's rows
    are padded to the columns known at its end; pages written before a later task brought
    new columns are read back and padded again at the end (rare: tasks mostly share keys)."""

    delimiter = ","

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.columns: dict[str, int] = {}
        self.spool_path = ctx.work_dir / "rows.csv"
        self.spool = ctx.spool("rows.csv")
        self.writer = RowWriter(TextSink(self.spool), self.delimiter, ctx.escape_formulas)
        self.segments: list[tuple[int, int]] = []  # per page: (bytes in the spool, width)
        self.rows = 0
        self.last_keys: tuple[str, ...] = ()
        self.last_indexes: list[int] = []
        self.in_order = False
        self.kinds = control_kinds(ctx.config)

    def add(self, task: ExportTask) -> bool:
        return self.add_page([task]) == 1

    def add_page(self, tasks: list[ExportTask]) -> int:
        rows = [row for row in map(self.row, tasks) if row is not None]
        if rows:
            width = len(self.columns)
            for row in rows:
                if len(row) < width:
                    row.extend([""] * (width - len(row)))
            start = self.spool.tell()
            self.writer.writerows(rows)
            self.segments.append((self.spool.tell() - start, width))
            self.rows += len(rows)
        return len(rows)

    def row(self, task: ExportTask) -> list[str] | None:
        """The task's cells by column (data keys, ``id``, controls; a later cell of the same
        name wins), the columns it brings appended; None when the task has no item.

        The cells are those of ``extract_item`` + ``pretty`` + ``control_cell``, computed in
        one pass over the result without the item's intermediate dicts (the row was ~half of
        a CSV export's time): see :func:`control_values`."""
        completion = latest_completion(task)
        if completion is None:
            if not self.ctx.include_unlabeled:
                return None
            output: dict[str, Any] = {}
        else:
            output = control_values(completion.get("result"), self.ctx.config, self.kinds)
        data = task.data
        keys = (*data, "id", *output)
        cells = [value if type(value) is str else data_cell(value) for value in data.values()]
        cells.append(str(task.id))
        cells += [value if type(value) is str else json_dumps(value) for value in output.values()]
        if keys != self.last_keys:  # tasks mostly share their keys: their column indexes too
            self.last_keys = keys
            self.last_indexes = [self.column(key) for key in keys]
            self.in_order = self.last_indexes == list(range(len(self.columns)))
        if self.in_order:  # the cells are the row already
            return cells
        row: list[str] = [""] * len(self.columns)
        for index, cell in zip(self.last_indexes, cells, strict=True):
            row[index] = cell
        return row

    def column(self, key: str) -> int:
        index = self.columns.get(key)
        if index is None:
            index = self.columns[key] = len(self.columns)
        return index

    def finish(self) -> None:
        self.spool.close()
        stream = self.ctx.open("result.csv")
        text = TextSink(stream)
        if not self.rows:
            text.write("\n")
            stream.close()
            return
        RowWriter(text, self.delimiter, self.ctx.escape_formulas).writerow(list(self.columns))
        self.write_rows(stream)
        stream.close()

    def write_rows(self, stream: ByteSink) -> None:
        """The spooled rows (the spool closed), each padded to the final columns."""
        text = TextSink(stream)
        width = len(self.columns)
        # cells were escaped when spooled: rows read back are written as they are
        padder = RowWriter(text, self.delimiter, escape_formulas=False)
        with self.spool_path.open("rb") as spool:
            for size, written_width in self.segments:
                if written_width == width:
                    while size:
                        chunk = spool.read(min(size, BUFFER_SIZE))
                        stream.write(chunk)
                        size -= len(chunk)
                    continue
                page = io.StringIO(spool.read(size).decode("utf-8"), newline="")
                rows = list(csv.reader(page, delimiter=self.delimiter))
                for row in rows:
                    row.extend([""] * (width - len(row)))
                padder.writerows(rows)


class TsvWriter(CsvWriter):
    delimiter = "\t"


class TextSink:
    """What ``csv.writer`` writes to: text encoded as UTF-8 into a :class:`ZipStream` (or a
    binary file)."""

    def __init__(self, stream: ByteSink) -> None:
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
