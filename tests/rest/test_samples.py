"""/api/import-example, /api/import-example-file, /samples/time-series.csv (spec §8)."""

from __future__ import annotations

import csv
import io
import re

from starlette.testclient import TestClient

from tests.conftest import fixture_text

TEXT = "To have faith is to trust yourself to the water"
PARAGRAPHS = '<View><Paragraphs name="o" value="$d" nameKey="speaker" textKey="phrase"/></View>'


def example(client: TestClient, config: str) -> object:
    response = client.get("/api/import-example", params={"label_config": config})
    assert response.status_code == 200, response.text
    return response.json()


def test_sample_values_per_tag(client: TestClient) -> None:
    assert example(client, '<View><Text name="o" value="$text"/></View>') == {"text": TEXT}
    assert example(client, '<View><Text name="o" value="$Image"/></View>') == {"Image": TEXT}
    assert example(client, '<View><Text name="o" value="$u" valueType="url"/></View>') == {
        "u": "https://htx-pub.s3.amazonaws.com/example.txt"
    }
    assert example(client, '<View><Header value="$header"/></View>') == {"header": "Task header"}
    assert example(client, '<View><HyperText name="o" value="$video"/></View>') == {
        "video": "<video src='static/samples/opossum_snow.mp4' width=100% controls>"
    }
    assert example(client, '<View><Video name="v" value="$x"/><List value="$y"/></View>') == {
        "x": "Something",
        "y": "Something",
    }
    dialogue = example(client, PARAGRAPHS)["d"]  # type: ignore[index]
    assert dialogue[0] == {"speaker": "Alice", "phrase": "Hi, Bob."}
    assert len(dialogue) == 5
    assert example(client, "<View></View>") == {}


def test_time_series_samples(client: TestClient) -> None:
    url_config = (
        '<View><TimeSeries name="ts" value="$ts" valueType="url" timeColumn="time" sep=";" '
        'timeFormat="%Y"><Channel column="a"/><Channel column="b"/></TimeSeries></View>'
    )
    assert example(client, url_config) == {
        "ts": "/samples/time-series.csv?time=time&values=a%2Cb&sep=%3B&tf=%25Y"
    }
    json_config = (
        '<View><TimeSeries name="ts" value="$ts" timeColumn="t" timeFormat="yyyy-MM-dd">'
        '<Channel column="a"/></TimeSeries></View>'
    )
    ts = example(client, json_config)["ts"]  # type: ignore[index]
    assert list(ts) == ["t", "a"]
    assert ts["t"][:2] == ["2020-01-01", "2020-01-02"] and len(ts["a"]) == 100


def test_predefined_task_comment_wins(client: TestClient) -> None:
    config = (
        '<View><Text name="t" value="$text"/><Image name="i" value="$image"/></View>\n'
        '<!-- not json { -->\n<!-- {"text": "from the comment", "extra": 1} -->'
    )
    assert example(client, config) == {
        "text": "from the comment",
        "image": "static/samples/sample.jpg",
        "extra": 1,
    }
    wrapped = '<View><Text name="t" value="$text"/></View><!--{"data": {"text": "d"}} -->'
    assert example(client, wrapped) == {"text": "d"}
    only_completions = '<View><Text name="t" value="$text"/></View><!-- {"completions": []} -->'
    assert example(client, only_completions) == {"text": TEXT}


def test_import_example_sources_and_errors(client: TestClient) -> None:
    config = '<View><Image name="i" value="$img"/></View>'
    expected = {"img": "static/samples/sample.jpg"}
    assert client.post("/api/import-example", data={"label_config": config}).json() == expected
    assert client.post("/api/import-example", json={"label_config": config}).json() == expected
    response = client.get("/api/import-example")
    assert response.status_code == 400
    assert response.json()["detail"] == "error while example generating"
    response = client.get("/api/import-example", params={"label_config": "<View>"})
    assert response.status_code == 400
    assert response.json()["label_config"][0].startswith("Premature end of data")


def test_import_example_file(client: TestClient) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    response = client.get("/api/import-example-file")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    filename = response.headers["filename"]
    assert re.fullmatch(r"sample-\d{4}-\d\d-\d\d-\d\d-\d\d\.json", filename)
    assert response.headers["content-disposition"] == f"attachment; filename={filename}"
    assert response.json() == [{"text": TEXT}, {"text": TEXT}]

    response = client.get("/api/import-example-file", params={"q": "csv", "raw": "1"})
    assert "content-disposition" not in response.headers
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text == f"text\n{TEXT}\n{TEXT}\n"
    response = client.get("/api/import-example-file", params={"q": "txt"})
    assert response.text == f"{TEXT}\n{TEXT}\n"
    assert response.headers["filename"].endswith(".txt")

    response = client.get("/api/import-example-file", params={"q": "xml"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith('Incorrect "q" or "raw" parameters')


def test_import_example_file_upload_set_and_multiple_keys(client: TestClient) -> None:
    config = (
        '<View><HyperText name="h" value="$html"/><Paragraphs name="p" value="$dialogue"/></View>'
    )
    assert client.post("/api/project/config", data={"label_config": config}).status_code == 201
    response = client.get("/api/import-example-file", params={"q": "tsv"})
    rows = list(csv.reader(io.StringIO(response.text), delimiter="\t"))
    assert rows[0] == ["html", "dialogue"]
    assert rows[1][0] == "<a href='heartex.net'>Heartex</a>"  # the upload sample set
    assert rows[1][1].startswith('[{"author": "Alice", "text": "Hi, Bob."}')
    response = client.get("/api/import-example-file", params={"q": "txt"})
    assert response.status_code == 400
    assert "multiple sources" in response.json()["detail"]


def test_time_series_csv(client: TestClient) -> None:
    response = client.get("/samples/time-series.csv", params={"time": "t", "values": "a,b"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["t", "a", "b"] and len(rows) == 101
    assert rows[1][0] == "0" and float(rows[1][1]) == float(rows[1][1])
    headless = client.get(
        "/samples/time-series.csv", params={"time": "0", "values": "1,3", "sep": "tab"}
    )
    rows = list(csv.reader(io.StringIO(headless.text), delimiter="\t"))
    assert len(rows) == 100 and len(rows[0]) == 4  # time + columns 1..3, no header
    assert client.get("/samples/time-series.csv", params={"sep": "ab"}).status_code == 400
