"""CSV/TSV exports against formula injection (OWASP "CSV Injection") and rows split by a bare
carriage return: ``LABELGRAPH_EXPORT_ESCAPE_FORMULAS`` on (the default) and off."""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings

CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="pick" toName="text">'
    '<Choice value="=1+2"/><Choice value="safe"/></Choices></View>'
)
# (task text, the cell written with escaping on)
CELLS = [
    ('=HYPERLINK("http://example.invalid","x")', '\'=HYPERLINK("http://example.invalid","x")'),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("\r", "'\r"),
    ("-5", "-5"),  # plain numbers are no formulas
    ("+1.5e3", "+1.5e3"),
    ("a\rb", "a\rb"),
    ("plain", "plain"),
]


def _client(settings: Settings, escape: bool) -> Iterator[TestClient]:
    app = create_app(dataclasses.replace(settings, export_escape_formulas=escape))
    with TestClient(app) as client:
        assert client.post("/api/project/config", data={"label_config": CONFIG}).status_code == 201
        tasks = [
            {
                "data": {"text": text},
                "completions": [
                    {
                        "result": [
                            {
                                "from_name": "pick",
                                "to_name": "text",
                                "type": "choices",
                                "value": {"choices": ["=1+2"]},
                            }
                        ]
                    }
                ],
            }
            for text, _ in CELLS
        ]
        assert client.post("/api/project/import", json=tasks).status_code == 201
        yield client


@pytest.fixture
def escaping(settings: Settings) -> Iterator[TestClient]:
    yield from _client(settings, True)


@pytest.fixture
def verbatim(settings: Settings) -> Iterator[TestClient]:
    yield from _client(settings, False)


def export_table(client: TestClient, fmt: str) -> tuple[bytes, list[list[str]]]:
    response = client.get("/api/project/export", params={"format": fmt})
    assert response.status_code == 200, response.text
    raw = zipfile.ZipFile(io.BytesIO(response.content)).read("result.csv")
    delimiter = "," if fmt == "CSV" else "\t"
    return raw, list(csv.reader(io.StringIO(raw.decode(), newline=""), delimiter=delimiter))


@pytest.mark.parametrize("fmt", ["CSV", "TSV"])
def test_formula_cells_are_escaped_by_default(escaping: TestClient, fmt: str) -> None:
    raw, rows = export_table(escaping, fmt)
    assert rows[0] == ["text", "id", "pick"]
    assert len(rows) == len(CELLS) + 1  # no row was split
    assert [row[0] for row in rows[1:]] == [escaped for _, escaped in CELLS]
    assert {row[2] for row in rows[1:]} == {"'=1+2"}  # control values too
    assert b"\r\n" not in raw


@pytest.mark.parametrize("fmt", ["CSV", "TSV"])
def test_escaping_off_writes_cells_as_label_studio(verbatim: TestClient, fmt: str) -> None:
    raw, rows = export_table(verbatim, fmt)
    assert len(rows) == len(CELLS) + 1
    assert [row[0] for row in rows[1:]] == [text for text, _ in CELLS]
    assert {row[2] for row in rows[1:]} == {"=1+2"}
    # Byte for byte what Python's csv module (Label Studio's writer) gives, except that a
    # cell holding a carriage return is quoted (only the first column has them here).
    delimiter = "," if fmt == "CSV" else "\t"
    expected = ""
    for row in rows:
        line = io.StringIO()
        csv.writer(line, delimiter=delimiter, lineterminator="\n").writerow(row)
        if "\r" in row[0]:
            rest = io.StringIO()
            csv.writer(rest, delimiter=delimiter, lineterminator="\n").writerow(row[1:])
            expected += f'"{row[0]}"{delimiter}{rest.getvalue()}'
        else:
            expected += line.getvalue()
    assert raw.decode() == expected


def test_a_bare_carriage_return_is_quoted(verbatim: TestClient) -> None:
    raw, _ = export_table(verbatim, "CSV")
    lines = raw.decode().split("\n")
    assert sum(line.startswith(('"\r",', '"\r=1",', '"a\rb",')) for line in lines) == 3
    assert not any(line.startswith("\r") for line in lines)
