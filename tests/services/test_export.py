"""Export service: format rules beyond the golden scenarios, media resolution, paging, files."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import http.server
import io
import json
import os
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from server import db
from server.errors import DomainError
from server.services import projects
from server.services.export import exporter as export_service
from server.services.export.brush import RLEError, decode_rle
from server.services.export.media import MediaResolver, remote_name
from server.services.export.text_writers import data_cell, pretty, tokens_and_tags
from server.services.imports import json_import as imports
from server.services.tasks import tasks
from server.settings import Settings
from tests.export_support import run_export, zip_names

TEXT_NER = (
    '<View><Text name="text" value="$text"/><Labels name="ner" toName="text">'
    '<Label value="PER"/><Label value="ORG"/></Labels>'
    '<Choices name="sent" toName="text"><Choice value="Pos"/><Choice value="Neg"/></Choices></View>'
)
IMAGE_RECT = (
    '<View><Image name="img" value="$image"/><RectangleLabels name="box" toName="img">'
    '<Label value="Dog"/><Label value="Cat"/></RectangleLabels></View>'
)
IMAGE_POLY = (
    '<View><Image name="img" value="$image"/><PolygonLabels name="poly" toName="img">'
    '<Label value="Tree"/></PolygonLabels></View>'
)
AUDIO = '<View><Audio name="audio" value="$audio"/><TextArea name="ta" toName="audio"/></View>'


@pytest.fixture
def project_id(client: Any) -> int:
    return int(client.app.state.project_id)


def setup_project(project_id: int, config: str, tasks: list[Any]) -> list[int]:
    def run() -> list[int]:
        projects.set_label_config(project_id, config)
        return imports.import_tasks(project_id, tasks).task_ids

    return db.with_connection(run)


def rect(x: float, y: float, w: float, h: float, label: str, **extra: Any) -> dict[str, Any]:
    return {
        "from_name": "box",
        "to_name": "img",
        "type": "rectanglelabels",
        "value": {"x": x, "y": y, "width": w, "height": h, "rectanglelabels": [label]},
        **extra,
    }


def png(path: Path, size: tuple[int, int], mode: str = "RGB") -> None:
    Image.new(mode, size).save(path, format="PNG")


# --- pure rules ----------------------------------------------------------------------------


def test_conll_tagging_follows_the_converter() -> None:
    spans = [
        {"start": 0, "end": 11, "labels": ["PER"]},
        {"start": 21, "end": 30, "labels": ["ORG"]},
    ]
    text = "John  Smith works at Acme Corp.\nYes"
    assert list(tokens_and_tags(text, spans)) == [
        ("John", "B-PER"),
        ("Smith", "I-PER"),
        ("works", "O"),
        ("at", "O"),
        ("Acme", "B-ORG"),
        ("Corp.", "I-ORG"),
        ("Yes", "O"),
    ]
    # Any Unicode whitespace separates tokens; no spans -> all O.
    assert list(tokens_and_tags("a\u00a0b\u2003c", [])) == [("a", "O"), ("b", "O"), ("c", "O")]
    # A span starting on whitespace still tags the token that ends right before it (the
    # converter's inclusive comparison with the exclusive token end).
    assert list(tokens_and_tags("ab cd", [{"start": 2, "end": 5, "labels": ["X"]}])) == [
        ("ab", "B-X"),
        ("cd", "I-X"),
    ]
    # Spans without offsets or labels are ignored rather than failing the export.
    assert list(tokens_and_tags("ab", [{"start": 0, "labels": ["X"]}])) == [("ab", "O")]


def test_pretty_values() -> None:
    single = [{"choices": ["Pos"], "type": "Choices"}]
    multi = [{"choices": ["Pos", "Neg"], "type": "Choices"}]
    assert pretty(single) == "Pos"
    assert pretty(multi) == {"choices": ["Pos", "Neg"]}
    two = [*single, *multi]
    assert pretty(two) == ["Pos", {"choices": ["Pos", "Neg"]}]
    assert pretty([{"rating": 4, "type": "Rating"}]) == [{"rating": 4}]


def test_data_cells_render_like_label_studio() -> None:
    assert [data_cell(v) for v in ("a", 1, 1.5, True, None)] == ["a", "1", "1.5", "True", ""]
    assert data_cell({"a": [1, None, False]}) == "{'a': [1, None, False]}"
    assert data_cell(["x", "y"]) == "['x', 'y']"


def test_rle_decoding_rejects_bad_streams() -> None:
    with pytest.raises(RLEError, match="ends early"):
        decode_rle([0, 0, 0, 8])
    with pytest.raises(RLEError, match="mask needs 16"):
        decode_rle([0, 0, 0, 4, 0, 0, 0, 0], expected=16)
    with pytest.raises(RLEError, match="integers"):
        decode_rle(["a"])


def test_remote_names_follow_label_studio() -> None:
    url = "http://example.com/dir/img%20gray.png?x=1"
    digest = hashlib.md5(url.encode()).hexdigest()[:4]
    assert remote_name(url) == f"img_20gray_{digest}.png"
    assert remote_name("http://example.com/").startswith("file_")


# --- format selection ------------------------------------------------------------------------


def test_format_errors_list_the_offered_names(settings: Settings, project_id: int) -> None:
    setup_project(project_id, TEXT_NER, [{"text": "x"}])
    offered = ["JSON", "JSON_MIN", "CSV", "TSV", "CONLL2003"]
    for name, message in (
        ("", "No export format given"),
        ("FOO", "Unknown export format 'FOO'"),
        ("json", "Unknown export format 'json'"),
        ("COCO", "Format COCO is not supported for this project"),
    ):
        with pytest.raises(DomainError) as caught:
            db.with_connection(export_service.export_project, project_id, name, settings)
        assert caught.value.code == "invalid"
        assert message in caught.value.message
        assert caught.value.details["formats"] == offered
        assert "use one of JSON, JSON_MIN, CSV, TSV, CONLL2003" in caught.value.message
    assert not settings.export_dir.exists() or not list(settings.export_dir.iterdir())


# --- tabular formats -------------------------------------------------------------------------


def test_csv_columns_grow_and_rows_keep_their_cells(settings: Settings, project_id: int) -> None:
    choice = {"from_name": "sent", "to_name": "text", "type": "choices"}
    setup_project(
        project_id,
        TEXT_NER,
        [
            {"data": {"text": "one", "id": "data-id"}, "completions": [{"result": []}]},
            {
                "data": {"text": 'two, "quoted"', "extra": "é"},
                "completions": [{"result": [{**choice, "value": {"choices": ["Pos"]}}]}],
            },
            {"data": {"text": "three"}},
        ],
    )
    _, files = run_export(settings, project_id, "CSV")
    text = files["result.csv"].decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["text", "id", "extra", "sent"]
    assert rows[1] == ["one", rows[1][1], "", ""]  # the task id replaced data's id in place
    assert rows[2][0] == 'two, "quoted"' and rows[2][2] == "é" and rows[2][3] == "Pos"
    assert len(rows) == 3  # the task without completions is not exported
    assert '"two, ""quoted"""' in text and text.endswith("\n") and "\r" not in text

    result, files = run_export(settings, project_id, "CSV", only_completed=False)
    rows = list(csv.reader(io.StringIO(files["result.csv"].decode())))
    assert [r[0] for r in rows[1:]] == ["one", 'two, "quoted"', "three"]
    assert result.task_count == 3


def test_empty_exports(settings: Settings, project_id: int) -> None:
    setup_project(project_id, TEXT_NER, [{"text": "unlabeled"}])
    assert run_export(settings, project_id, "CSV")[1] == {"result.csv": b"\n"}
    assert run_export(settings, project_id, "TSV")[1] == {"result.csv": b"\n"}
    assert run_export(settings, project_id, "JSON")[1] == {"result.json": b"[]"}
    assert run_export(settings, project_id, "JSON_MIN")[1] == {"result.json": b"[]"}
    assert run_export(settings, project_id, "CONLL2003")[1] == {
        "result.conll": b"-DOCSTART- -X- O\n"
    }
    _, files = run_export(settings, project_id, "JSON", only_completed=False)
    assert json.loads(files["result.json"])[0]["completions"] == []


def test_json_uses_current_data_and_meta(settings: Settings, project_id: int) -> None:
    ids = setup_project(
        project_id,
        TEXT_NER,
        [{"data": {"text": "old"}, "meta": {"m": 1}, "completions": [{"result": []}]}],
    )
    db.with_connection(tasks.update_task, ids[0], {"data": {"text": "new"}})
    _, files = run_export(settings, project_id, "JSON")
    (doc,) = json.loads(files["result.json"])
    assert doc["data"] == {"text": "new"} and doc["meta"] == {"m": 1}
    assert list(doc) == ["completions", "data", "id", "meta"]


def test_conll_uses_the_first_labels_control(settings: Settings, project_id: int) -> None:
    """Label Studio fails (KeyError: 'start') when the first result is a Choices; we take the
    first Labels control instead."""
    result = [
        {"from_name": "sent", "to_name": "text", "type": "choices", "value": {"choices": ["Pos"]}},
        {
            "from_name": "ner",
            "to_name": "text",
            "type": "labels",
            "value": {"start": 0, "end": 4, "labels": ["PER"]},
        },
    ]
    setup_project(
        project_id, TEXT_NER, [{"data": {"text": "John x"}, "completions": [{"result": result}]}]
    )
    _, files = run_export(settings, project_id, "CONLL2003")
    assert files["result.conll"].decode() == "-DOCSTART- -X- O\nJohn -X- _ B-PER\nx -X- _ O\n\n"


# --- image formats -----------------------------------------------------------------------------


def test_coco_polygons_and_sizes_from_uploaded_images(settings: Settings, project_id: int) -> None:
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    png(settings.upload_dir / "a.png", (200, 100))
    polygon = {
        "from_name": "poly",
        "to_name": "img",
        "type": "polygonlabels",
        "value": {"points": [[10, 10], [50, 10], [50, 50]], "polygonlabels": ["Tree"]},
    }
    setup_project(
        project_id,
        IMAGE_POLY,
        [{"data": {"image": "/data/upload/a.png"}, "completions": [{"result": [polygon]}]}],
    )
    _, files = run_export(settings, project_id, "COCO")
    coco = json.loads(files["result.json"])
    assert coco["images"] == [{"width": 200, "height": 100, "id": 0, "file_name": "images/a.png"}]
    (annotation,) = coco["annotations"]
    assert annotation["segmentation"] == [[20.0, 10.0, 100.0, 10.0, 100.0, 50.0]]
    assert annotation["bbox"] == [20.0, 10.0, 80.0, 40.0]
    assert annotation["area"] == pytest.approx(1600.0)
    assert coco["categories"] == [{"id": 0, "name": "Tree"}]
    assert "images/a.png" in files


def test_missing_sizes_without_an_image_fail_clearly(settings: Settings, project_id: int) -> None:
    ids = setup_project(
        project_id,
        IMAGE_RECT,
        [
            {
                "data": {"image": "http://example.invalid/x.jpg"},
                "completions": [{"result": [rect(1, 1, 1, 1, "Dog")]}],
            }
        ],
    )
    for fmt in ("COCO", "VOC"):
        with pytest.raises(DomainError) as caught:
            run_export(settings, project_id, fmt)
        assert caught.value.code == "conflict"
        assert f"Cannot export task {ids[0]} as {fmt}" in caught.value.message
        assert "original_width" in caught.value.message
    # A failed export leaves nothing behind.
    assert list(settings.export_dir.iterdir()) == []
    # YOLO needs no sizes.
    _, files = run_export(settings, project_id, "YOLO")
    assert files["labels/x.txt"] == b"1 0.015 0.015 0.01 0.01\n"


def test_voc_same_image_name_keeps_the_last_task(settings: Settings, project_id: int) -> None:
    size = {"original_width": 100, "original_height": 100}
    setup_project(
        project_id,
        IMAGE_RECT,
        [
            {
                "data": {"image": "http://a.invalid/x.jpg"},
                "completions": [{"result": [rect(0, 0, 10, 10, "Dog", **size)]}],
            },
            {
                "data": {"image": "http://b.invalid/x.png"},
                "completions": [{"result": [rect(0, 0, 10, 10, "Cat", **size)]}],
            },
        ],
    )
    result, files = run_export(settings, project_id, "VOC")
    assert sorted(files) == ["Annotations/x.xml"]
    assert "<name>Cat</name>" in files["Annotations/x.xml"].decode()
    assert result.task_count == 2


def test_yolo_classes_labels_and_notes(settings: Settings, project_id: int) -> None:
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    png(settings.upload_dir / "pic.png", (10, 10))
    setup_project(
        project_id,
        IMAGE_RECT,
        [
            {
                "data": {"image": "/data/upload/pic.png"},
                "completions": [
                    {"result": [rect(10, 20, 30, 40, "Dog"), rect(0, 0, 50, 50, "Fox")]}
                ],
            },
            {"data": {"image": "/data/upload/pic2.png"}, "completions": [{"result": []}]},
        ],
    )
    result, files = run_export(settings, project_id, "YOLO")
    assert files["classes.txt"] == b"Cat\nDog\nFox\n"  # config labels sorted, then unknown ones
    assert files["labels/pic.txt"] == b"1 0.25 0.4 0.3 0.4\n2 0.25 0.25 0.5 0.5\n"
    notes = json.loads(files["notes.json"])
    assert notes["categories"] == [
        {"id": 0, "name": "Cat"},
        {"id": 1, "name": "Dog"},
        {"id": 2, "name": "Fox"},
    ]
    assert "images/pic.png" in files and result.task_count == 1
    assert {"images/", "labels/"} <= set(zip_names(result.path))


def test_yolo_lines_grouped_by_control_and_odd_boxes(settings: Settings, project_id: int) -> None:
    """Lines come grouped by control in order of first appearance (as the item groups them),
    whatever the result's order; integer and float coordinates, entries of other controls,
    values that are no objects and rectangles without a label are passed over as before."""
    config = (
        '<View><Image name="img" value="$image"/><RectangleLabels name="box" toName="img">'
        '<Label value="Dog"/></RectangleLabels><RectangleLabels name="other" toName="img">'
        '<Label value="Cat"/></RectangleLabels><Choices name="c" toName="img">'
        '<Choice value="A"/></Choices></View>'
    )
    other = {**rect(50, 50, 10, 10, "Cat"), "from_name": "other"}
    setup_project(
        project_id,
        config,
        [
            {
                "data": {"image": "http://a.invalid/p.jpg"},
                "completions": [
                    {
                        "result": [
                            {"from_name": "c", "to_name": "img", "value": {"choices": ["A"]}},
                            other,
                            rect(10, 20, 30, 40, "Dog"),
                            {"from_name": "box", "value": "not an object"},
                            {"from_name": "box", "value": {"x": 1, "y": 1, "width": 1}},
                            rect(0.5, 0.25, 1, 2, "Dog"),
                        ]
                    }
                ],
            }
        ],
    )
    _, files = run_export(settings, project_id, "YOLO")
    assert files["classes.txt"] == b"Cat\nDog\n"
    assert files["labels/p.txt"] == (
        b"0 0.55 0.55 0.1 0.1\n1 0.25 0.4 0.3 0.4\n1 0.01 0.0125 0.01 0.02\n"
    )


# --- media ---------------------------------------------------------------------------------------


def test_upload_references_never_escape_the_upload_folder(tmp_path: Path) -> None:
    uploads = tmp_path / "project" / "upload"
    uploads.mkdir(parents=True)
    (uploads / "ok.png").write_bytes(b"x")
    (tmp_path / "project" / "secret.db").write_bytes(b"secret")
    resolver = MediaResolver(upload_dir=uploads, work_dir=tmp_path / "work")
    assert resolver.resolve("/data/upload/ok.png") is not None
    for reference in (
        "/data/upload/../secret.db",
        "/data/upload/%2e%2e/secret.db",
        "/data/upload/..%2fsecret.db",
        "/data/upload/",
        str(tmp_path / "project" / "secret.db"),
        "file:///etc/passwd",
        "/data/ok.png?d=upload",
        42,
    ):
        assert resolver.resolve(reference) is None, reference


class _Handler(http.server.BaseHTTPRequestHandler):
    delay = 0.0
    body = b""

    def do_GET(self) -> None:
        time.sleep(self.delay)
        if self.path.startswith("/missing"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[str]:
    buffer = io.BytesIO()
    Image.new("RGBA", (40, 20)).save(buffer, format="PNG")
    _Handler.body = buffer.getvalue()
    _Handler.delay = 0.0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_remote_images_are_fetched_only_when_allowed(
    settings: Settings, project_id: int, image_server: str
) -> None:
    url = f"{image_server}/img/photo.png"
    setup_project(
        project_id,
        IMAGE_RECT,
        [{"data": {"image": url}, "completions": [{"result": [rect(0, 0, 50, 50, "Dog")]}]}],
    )
    # Off by default: the reference is kept and no size can be read.
    with pytest.raises(DomainError, match="LABELGRAPH_EXPORT_FETCH_REMOTE"):
        run_export(settings, project_id, "COCO")
    import dataclasses

    # Fetching on, but this server is on loopback: refused like any private address.
    public_only = dataclasses.replace(settings, export_fetch_remote=True)
    with pytest.raises(DomainError):
        run_export(public_only, project_id, "COCO")
    allowed = dataclasses.replace(
        public_only, export_fetch_timeout=2.0, url_import_allow_private=True
    )
    _, files = run_export(allowed, project_id, "COCO")
    (image,) = json.loads(files["result.json"])["images"]
    stored = remote_name(url)
    assert image == {"width": 40, "height": 20, "id": 0, "file_name": f"images/{stored}"}
    assert files[f"images/{stored}"] == _Handler.body
    _, files = run_export(allowed, project_id, "VOC")
    assert "<depth>4</depth>" in files["Annotations/" + stored[: -len(".png")] + ".xml"].decode()


def test_remote_fetch_times_out(settings: Settings, project_id: int, image_server: str) -> None:
    import dataclasses

    _Handler.delay = 2.0
    size = {"original_width": 10, "original_height": 10}
    url = f"{image_server}/slow.png"
    setup_project(
        project_id,
        IMAGE_RECT,
        [
            {
                "data": {"image": url},
                "completions": [{"result": [rect(0, 0, 50, 50, "Dog", **size)]}],
            }
        ],
    )
    allowed = dataclasses.replace(
        settings, export_fetch_remote=True, export_fetch_timeout=0.2, url_import_allow_private=True
    )
    started = time.monotonic()
    _, files = run_export(allowed, project_id, "COCO")
    assert time.monotonic() - started < 1.5
    assert json.loads(files["result.json"])["images"][0]["file_name"] == url


def test_asr_needs_a_readable_audio_file(settings: Settings, project_id: int) -> None:
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    (settings.upload_dir / "bad.wav").write_bytes(b"not a wav")
    text = {"from_name": "ta", "to_name": "audio", "type": "textarea", "value": {"text": ["hi"]}}
    ids = setup_project(
        project_id,
        AUDIO,
        [
            {"data": {"audio": "/data/upload/bad.wav"}, "completions": [{"result": [text]}]},
        ],
    )
    with pytest.raises(DomainError, match=f"task {ids[0]} as ASR_MANIFEST.*not a readable WAV"):
        run_export(settings, project_id, "ASR_MANIFEST")
    db.with_connection(tasks.delete_all_tasks, project_id)
    db.with_connection(
        imports.import_tasks,
        project_id,
        [{"data": {"audio": "/data/upload/none.wav"}, "completions": [{"result": [text]}]}],
    )
    with pytest.raises(DomainError, match="is not an uploaded file"):
        run_export(settings, project_id, "ASR_MANIFEST")


def test_brush_formats_report_bad_masks_and_missing_numpy(
    settings: Settings, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = (
        '<View><Image name="img" value="$image"/><BrushLabels name="brush" toName="img">'
        '<Label value="Road"/></BrushLabels></View>'
    )
    brush: dict[str, Any] = {
        "from_name": "brush",
        "to_name": "img",
        "type": "brushlabels",
        "original_width": 2,
        "original_height": 1,
        "value": {"rle": [0, 0, 0, 9], "brushlabels": ["Road"]},
    }
    ids = setup_project(
        project_id, config, [{"data": {"image": "x"}, "completions": [{"result": [brush]}]}]
    )
    with pytest.raises(DomainError, match=f"task {ids[0]} as BRUSH_TO_NUMPY: completion"):
        run_export(settings, project_id, "BRUSH_TO_NUMPY")
    with pytest.raises(DomainError, match="the RLE holds 9 values, the mask needs 8"):
        run_export(settings, project_id, "BRUSH_TO_PNG")
    assert list(settings.export_dir.iterdir()) == []
    db.with_connection(tasks.delete_all_tasks, project_id)
    # 8 values: one repeated run (flag 1, k 0, len-1 = 7 in 3 bits) of the word 0.
    bits = "0" * 28 + "1000" + "00111" + "0010" * 4 + "1" + "00" + "111" + "0" * 8
    bits += "0" * (-len(bits) % 8)
    brush["value"]["rle"] = [int(bits[k : k + 8], 2) for k in range(0, len(bits), 8)]
    db.with_connection(
        imports.import_tasks,
        project_id,
        [{"data": {"image": "y"}, "completions": [{"result": [brush]}]}],
    )
    _, files = run_export(settings, project_id, "BRUSH_TO_NUMPY")
    assert len(files) == 1
    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(DomainError, match=r"labelgraph\[images\]"):
        run_export(settings, project_id, "BRUSH_TO_NUMPY")


# --- streaming and files ---------------------------------------------------------------------


def test_tasks_are_read_in_keyset_pages(
    settings: Settings, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = [{"data": {"text": f"t{i}"}, "completions": [{"result": []}]} for i in range(5)]
    tasks.insert(2, {"data": {"text": "unlabeled"}})
    ids = setup_project(project_id, TEXT_NER, tasks)
    calls: list[tuple[int, int]] = []
    original = export_service.read_page

    def spy(project: int, after_id: int, only_completed: bool, limit: int) -> Any:
        calls.append((after_id, limit))
        return original(project, after_id, only_completed, limit)

    monkeypatch.setattr(export_service, "PAGE_SIZE", 2)
    monkeypatch.setattr(export_service, "read_page", spy)
    progress: list[tuple[int, int]] = []
    result = db.with_connection(
        export_service.export_project,
        project_id,
        "JSON_MIN",
        settings,
        progress=lambda done, total: progress.append((done, total)),
    )
    labeled = [i for i in ids if i != ids[2]]
    assert calls == [(0, 2), (labeled[1], 2), (labeled[3], 2), (labeled[4], 2)]
    assert progress == [(2, 5), (4, 5), (5, 5)]
    with zipfile.ZipFile(result.path) as archive:
        rows = json.loads(archive.read("result.json"))
    assert [r["id"] for r in rows] == labeled and result.task_count == 5


def test_export_files_expire_and_are_swept(settings: Settings, project_id: int) -> None:
    setup_project(project_id, TEXT_NER, [{"data": {"text": "a"}, "completions": [{"result": []}]}])
    result, _ = run_export(settings, project_id, "JSON")
    assert result.download_name.endswith("-JSON.zip") and result.file_name.startswith(
        result.download_name[: -len(".zip")]
    )
    found = export_service.find_export(settings.export_dir, result.file_name, settings.export_ttl)
    assert found.path == result.path and found.download_name == result.download_name
    for bad in ("../labelgraph.db", "x.zip", result.file_name + ".part", "JSON.zip"):
        with pytest.raises(DomainError):
            export_service.find_export(settings.export_dir, bad, settings.export_ttl)
    old = time.time() - 2 * 86400
    leftovers = [settings.export_dir / "x.zip.part", settings.export_dir / ".abc.work"]
    leftovers[0].write_bytes(b"")
    leftovers[1].mkdir()
    for path in [result.path, *leftovers]:
        os.utime(path, (old, old))
    with pytest.raises(DomainError):
        export_service.find_export(settings.export_dir, result.file_name, settings.export_ttl)
    assert export_service.sweep_exports(settings.export_dir, settings.export_ttl) == 2
    assert list(settings.export_dir.iterdir()) == []


# --- speed-related rules (bench/export_workload.py) ---------------------------------------------


def test_coco_json_writes_what_json_dumps_writes() -> None:
    from server.services.export.images import _coco_json

    values: list[Any] = [
        {"width": 640, "height": 480.5, "id": 3, "file_name": 'h\u00e9llo"\n/x.jpg'},
        {"bbox": [1, 2.25, 1e16, 1e-7], "segmentation": [[1.5, 2.5]], "area": float("nan")},
        {"x": [float("inf"), -float("inf")], "e": {}, "l": [], "n": None, "t": True, "f": False},
        {"nested": {"a": {"b": [1, {"c": 2}]}}, "keys": {1: "v", None: 2}},
        [],
        {},
    ]
    for value in values:
        assert _coco_json(value) == json.dumps(value, indent=2).encode("ascii")


def test_image_exports_leave_no_cyclic_garbage(settings: Settings, project_id: int) -> None:
    """The exporter pauses the cyclic collector: a writer that leaves cycles per task (as
    json's indenting encoder does) grows the export's memory with the project."""
    import gc

    size = {"original_width": 100, "original_height": 80}
    items = [
        {
            "data": {"image": f"http://img.invalid/{i}.jpg"},
            "completions": [{"result": [rect(1, 2, 30, 40, "Dog", **size)]}],
        }
        for i in range(200)
    ]
    setup_project(project_id, IMAGE_RECT, items)
    for fmt in ("COCO", "YOLO", "VOC"):
        gc.collect()
        gc.disable()
        try:
            result, _ = run_export(settings, project_id, fmt)
            unreachable = gc.collect()
        finally:
            gc.enable()
        assert result.task_count == 200
        assert unreachable < 100, (fmt, unreachable)
    coco = json.loads(run_export(settings, project_id, "COCO")[1]["result.json"])
    assert len(coco["images"]) == len(coco["annotations"]) == 200
    assert coco["images"][0] == {
        "width": 100,
        "height": 80,
        "id": 0,
        "file_name": "http://img.invalid/0.jpg",
    }
    assert coco["annotations"][0]["bbox"] == [1, 1, 30, 32]
    assert coco["annotations"][0]["area"] == 30 * 32


def test_yolo_same_image_name_keeps_the_last_task(settings: Settings, project_id: int) -> None:
    size = {"original_width": 100, "original_height": 100}
    setup_project(
        project_id,
        IMAGE_RECT,
        [
            {
                "data": {"image": "http://a.invalid/x.jpg"},
                "completions": [{"result": [rect(0, 0, 10, 10, "Dog", **size)]}],
            },
            {
                "data": {"image": "http://b.invalid/y.jpg"},
                "completions": [{"result": [rect(0, 0, 20, 20, "Dog", **size)]}],
            },
            {
                "data": {"image": "http://b.invalid/x.png"},
                "completions": [{"result": [rect(0, 0, 10, 10, "Cat", **size)]}],
            },
        ],
    )
    result, files = run_export(settings, project_id, "YOLO")
    assert sorted(name for name in files if name.startswith("labels/")) == [
        "labels/x.txt",
        "labels/y.txt",
    ]
    assert files["labels/x.txt"] == b"0 0.05 0.05 0.1 0.1\n"  # Cat (class 0), the last task's
    assert files["labels/y.txt"] == b"1 0.1 0.1 0.2 0.2\n"
    assert result.task_count == 3


def test_csv_pages_written_before_new_columns_are_padded(
    settings: Settings, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are spooled as CSV page by page: pages written before a later page brought new
    columns get their empty cells at the end, with quoted cells (\\r, newlines, quotes) and
    escaped formulas kept as they were written."""
    monkeypatch.setattr(export_service, "PAGE_SIZE", 2)
    choice = {"from_name": "sent", "to_name": "text", "type": "choices"}
    done = [{"result": [{**choice, "value": {"choices": ["Pos"]}}]}]
    setup_project(
        project_id,
        TEXT_NER,
        [
            {"data": {"text": "a\rb"}, "completions": [{"result": []}]},
            {"data": {"text": "=SUM(A1)"}, "completions": [{"result": []}]},
            {"data": {"text": 'line\nbreak "q"'}, "completions": done},
            {"data": {"text": "plain"}, "completions": [{"result": []}]},
            {"data": {"text": "last", "more": "-1"}, "completions": done},
        ],
    )
    escaping = dataclasses.replace(settings, export_escape_formulas=True)
    _, files = run_export(escaping, project_id, "CSV")
    text = files["result.csv"].decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["text", "id", "sent", "more"]
    assert [r[0] for r in rows[1:]] == ["a\rb", "'=SUM(A1)", 'line\nbreak "q"', "plain", "last"]
    assert [r[2:] for r in rows[1:]] == [["", ""], ["", ""], ["Pos", ""], ["", ""], ["Pos", "-1"]]
    assert '"a\rb"' in text and text.endswith("\n") and "\r\n" not in text
