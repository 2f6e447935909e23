"""Export fast paths: whole pages serialised at once, zip entries at a fast deflate level."""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from typing import Any

import pytest

from server import db
from server.services import projects
from server.services.export import exporter as export_service
from server.services.export import zip_writer
from server.services.export.writer_base import ZIP_LEVEL, JsonArray
from server.services.imports import json_import as imports
from server.settings import Settings
from tests.export_support import run_export

CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="sent" toName="text">'
    '<Choice value="Pos"/><Choice value="Neg"/></Choices></View>'
)


@pytest.fixture
def project_id(client: Any) -> int:
    return int(client.app.state.project_id)


def test_json_array_pages_are_laid_out_as_json_dumps() -> None:
    pages: list[list[Any]] = [
        [{"b": 1, "a": ["é", {"z": None, "y": 1.5}]}, []],
        [],
        [{"big": 2**70}],  # orjson refuses it: that page goes element by element
        [{}, "text\nwith newline", 3],
    ]
    out = io.BytesIO()
    array = JsonArray(out)
    for page in pages:
        array.extend(page, sort_keys=True)
    array.close()
    everything = [value for page in pages for value in page]
    expected = json.dumps(everything, indent=2, ensure_ascii=False, sort_keys=True)
    assert out.getvalue().decode("utf-8") == expected


def test_json_array_nested_and_empty() -> None:
    out = io.BytesIO()
    array = JsonArray(out, depth=1)
    array.extend([{"k": [1, 2]}, 2])
    array.close()
    assert out.getvalue() == json.dumps([{"k": [1, 2]}, 2], indent=2).replace("\n", "\n  ").encode(
        "utf-8"
    )
    empty = io.BytesIO()
    nothing = JsonArray(empty)
    nothing.extend([])
    nothing.close()
    assert empty.getvalue() == b"[]"


def setup_project(project_id: int, count: int) -> list[int]:
    def run() -> list[int]:
        projects.set_label_config(project_id, CONFIG)
        tasks = [
            {
                "data": {"text": f"tâche {i} " * 20, "n": i, "z": {"b": i, "a": [i]}},
                "meta": {"source": "bench"} if i % 2 else None,
                "completions": [
                    {"result": [], "lead_time": i / 3, "created_at": 1_700_000_000 + i},
                    {"result": [], "was_cancelled": True},
                ]
                if i % 5
                else [],
            }
            for i in range(count)
        ]
        return imports.import_tasks(project_id, tasks).task_ids

    return db.with_connection(run)


def test_paged_json_export_is_json_dumps_of_all_tasks(
    settings: Settings, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages serialised by one ``orjson.dumps`` each join into one document, byte for byte
    the ``json.dumps(indent=2, sort_keys=True)`` of the whole list; unlabeled tasks skipped."""
    monkeypatch.setattr(export_service, "PAGE_SIZE", 3)
    task_ids = setup_project(project_id, 11)
    result, files = run_export(settings, project_id, "JSON")
    documents = json.loads(files["result.json"])
    assert [d["id"] for d in documents] == [t for i, t in enumerate(task_ids) if i % 5]
    assert result.task_count == len(documents) == 8
    expected = json.dumps(documents, indent=2, sort_keys=True, ensure_ascii=False)
    assert files["result.json"] == expected.encode("utf-8")
    assert documents[0]["data"]["text"].startswith("tâche 1 ")
    assert [len(d["completions"]) for d in documents] == [2] * 8


def test_zip_entries_use_the_fast_deflate_level(settings: Settings, project_id: int) -> None:
    setup_project(project_id, 40)
    for fmt in ("JSON", "CSV"):
        result, files = run_export(settings, project_id, fmt)
        with zipfile.ZipFile(result.path) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
        assert infos
        for info in infos:
            assert info.compress_type == zipfile.ZIP_DEFLATED
            content = files[info.filename]
            fast = zip_writer.deflate(content, ZIP_LEVEL)
            deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
            assert len(fast) != len(deflate.compress(content) + deflate.flush())
            assert info.compress_size == len(fast), (fmt, info.filename)


def test_csv_control_cells_are_those_of_the_item() -> None:
    """The CSV row's one-pass cells equal extract_item + pretty + control_cell."""
    from server.services.config.label_config import parse as parse_config
    from server.services.export.text_writers import (
        control_cell,
        control_values,
        json_dumps,
        pretty,
    )
    from server.services.export.writer_base import ExportTask, extract_item

    config = parse_config(
        '<View><Image name="img" value="$img"/><Choices name="c" toName="img">'
        '<Choice value="A"/><Choice value="B"/></Choices>'
        '<RectangleLabels name="box" toName="img"><Label value="Car"/></RectangleLabels>'
        '<TextArea name="note" toName="img"/></View>'
    )
    results: list[Any] = [
        [{"from_name": "c", "to_name": "img", "type": "choices", "value": {"choices": ["A"]}}],
        [{"from_name": "c", "value": {"choices": ["A", "B"]}}],
        [{"from_name": "c", "value": {"choices": ["A"]}}, {"from_name": "c", "value": {}}],
        [
            {
                "from_name": "box",
                "original_width": 640,
                "original_height": 480.5,
                "value": {"type": "x", "x": 1.5, "rectanglelabels": ["Car"], "é": float("nan")},
            },
            {"from_name": "note", "value": {"text": ["a\nb"], "original_width": 3}},
            {"from_name": "unknown", "value": {}},
            "not an entry",
            {"from_name": "box", "value": None, "original_width": 2**70},
        ],
        [
            {"from_name": ["not", "a", "name"], "value": {}},
            {"from_name": "c", "value": "not a dict", "original_height": 1},
            {"from_name": "c", "value": {"choices": ["B"], "type": "choices"}},
            {"from_name": "note", "value": {"text": ["x"], "type": "textarea"}},
            {"from_name": "c", "value": {"choices": "A"}},
        ],
        [{"from_name": "c", "value": {"choices": ["B"]}, "original_width": 5}],
        "not a list",
    ]
    for result in results:
        task = ExportTask(1, {"img": "x.png"}, None, [{"result": result, "created_at": 1}])
        item = extract_item(task, config)
        assert item is not None
        expected = {name: control_cell(pretty(values)) for name, values in item.output.items()}
        got = {
            name: value if isinstance(value, str) else json_dumps(value)
            for name, value in control_values(result, config).items()
        }
        assert got == expected
        assert list(got) == list(expected)


def test_csv_formula_cells_are_found_in_a_page_of_rows() -> None:
    """Formula-like cells are escaped wherever they are in a page (one search over the page
    decides whether its rows are checked cell by cell); a NUL before "=" inside a cell, or a
    number, is no formula."""
    import io

    from server.services.export.text_writers import RowWriter, TextSink

    rows = [[str(n), f"text {n}", "-12.5", "plain"] for n in range(1000)]
    rows[5][3] = "a\x00=b"
    rows[700][1] = "=HYPERLINK(1)"
    rows[900][2] = "@SUM(A1)"

    def written(page: list[list[str]], one_by_one: bool) -> str:
        out = io.BytesIO()
        writer = RowWriter(TextSink(out), ",", escape_formulas=True)
        if one_by_one:
            for row in page:
                writer.writerow(row)
        else:
            writer.writerows(page)
        return out.getvalue().decode()

    text = written(rows, one_by_one=False)
    assert text == written(rows, one_by_one=True)
    lines = text.splitlines()
    assert lines[700] == "700,'=HYPERLINK(1),-12.5,plain"
    assert lines[900] == "900,text 900,'@SUM(A1),plain"
    assert lines[5] == "5,text 5,-12.5,a\x00=b"
    assert written(rows[:3], one_by_one=False) == "".join(line + "\n" for line in lines[:3])
    assert written([["=1", "x"], ["2", "+3a"]], one_by_one=False) == "'=1,x\n2,'+3a\n"


def test_staged_names_are_those_of_os_path() -> None:
    """VOC/YOLO file names: the base name without its extension, as os.path makes them."""
    import os

    from server.services.export.images import staged_name

    references = [
        "a/b.c",
        "x.tar.gz",
        ".bashrc",
        "...",
        "..a",
        "a.",
        "/x/..",
        "noext",
        "d/.e.f",
        "https://h/p/q.jpg?x=1",
        "..b.c",
        "a\\b.c",
        "/data/upload/caf\u00e9 1.png",
        "n\x00ul.png",
    ]
    for reference in references:
        base = os.path.splitext(os.path.basename(reference))[0].replace("\x00", "_")[:200]
        expected = base if base not in ("", ".", "..") else "task-7"
        assert staged_name(reference, 7) == expected, reference


def test_yolo_numbers_are_written_as_repr() -> None:
    """YOLO's numbers, formatted by one orjson.dumps a task, are repr's (f-string's) text,
    also outside fixed notation, for NaN and infinities, and for 10.00001-like numbers."""
    import random
    import struct

    from server.services.export.images import float_texts

    rng = random.Random(7)
    values = [rng.uniform(0, 1) for _ in range(4000)] + [
        0.0,
        -0.0,
        1.0,
        1e-4,
        9.99e-5,
        -5e-5,
        2.35e-6,
        1e15,
        9999999999999998.0,
        1e16,
        1.5e16,
        1e300,
        5e-324,
        10.00001,
        float("nan"),
        float("inf"),
        -float("inf"),
    ]
    values += [
        struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(2000)
    ]
    for start in range(0, len(values), 8):
        chunk = values[start : start + 8]
        assert float_texts(chunk) == [f"{value}" for value in chunk]


def test_csv_lines_are_what_csv_writer_writes() -> None:
    """csv_lines (rows built a column at a time) writes csv.writer's text, byte for byte, for
    rows of cells holding delimiters, quotes, line feeds, NULs and other characters, with
    columns needing quotes in every cell or some; it declines (None) rows csv must write."""
    import csv
    import io
    import random

    from server.services.export.text_writers import csv_lines

    rng = random.Random(5)
    alphabet = ["a", ",", '"', "\n", "\t", " ", "\x00", "é", "'", "=", "\\", "\x85", "\u2028"]
    written = 0
    for _ in range(5000):
        width = rng.randint(1, 5)
        rows = [
            ["".join(rng.choices(alphabet, k=rng.choice([0, 3, 8]))) for _ in range(width)]
            for _ in range(rng.randint(0, 6))
        ]
        if rows and rng.random() < 0.3:  # a column whose cells all need quotes
            for row in rows:
                row[0] = '"' + row[0]
        for delimiter in (",", "\t"):
            out = io.StringIO()
            csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
            got = csv_lines(rows, delimiter)
            if width > 1 or not rows:
                assert got == out.getvalue(), (rows, delimiter)
                written += 1
            else:
                assert got is None
    assert written > 5000
    assert csv_lines([["a", "b"], ["c"]], ",") is None
    assert csv_lines([["1", 2]], ",") is None  # type: ignore[list-item]
    assert csv_lines([["x,y", 'q"'], ["", "z"]], ",") == '"x,y","q"""\n,z\n'


def test_integers_beyond_64_bits_are_exported_as_stored(
    settings: Settings, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's texts are parsed in one go; one integer orjson would make a float of (and
    json.loads keeps) sends that page through json.loads, in JSON and CSV alike."""
    monkeypatch.setattr(export_service, "PAGE_SIZE", 2)
    big, low = 123456789012345678901234, -9223372036854775809

    def run() -> None:
        projects.set_label_config(project_id, CONFIG)
        tasks = [
            {"data": {"text": "plain", "n": 1}, "completions": [{"result": []}]},
            {"data": {"text": "big", "n": big}, "completions": [{"result": [], "x": low}]},
            {"data": {"text": "after", "n": 2}, "completions": [{"result": []}]},
        ]
        imports.import_tasks(project_id, tasks)

    db.with_connection(run)
    _, files = run_export(settings, project_id, "JSON")
    documents = json.loads(files["result.json"])
    assert [d["data"]["n"] for d in documents] == [1, big, 2]
    assert documents[1]["completions"][0]["x"] == low
    assert f'"n": {big}'.encode() in files["result.json"]
    _, files = run_export(settings, project_id, "CSV")
    assert str(big).encode() in files["result.csv"]
