"""``/static/samples/*``: every sample media URL that /api/import-example gives answers with
the file of the right type (the files are labelgraph's own, see scripts/make_sample_media.py)."""

from __future__ import annotations

import csv
import io
import json
import re
import wave

import pytest
from PIL import Image
from starlette.testclient import TestClient

from server.sample_media import SAMPLE_MEDIA_TYPES
from server.services.config.sample_tasks import SAMPLES
from tests.recorded_fixtures import behaviour, config_text

SAMPLE_URL = re.compile(r"static/samples/[^'\"\s>]+")


def urls_in(value: object) -> set[str]:
    return set(SAMPLE_URL.findall(json.dumps(value)))


def _example_urls(client: TestClient) -> set[str]:
    urls: set[str] = set()
    for key in behaviour():
        text = config_text(key)
        for method in ("GET", "POST"):
            kwargs = {"params" if method == "GET" else "data": {"label_config": text}}
            response = client.request(method, "/api/import-example", **kwargs)  # type: ignore[arg-type]
            assert response.status_code == 200, (key, response.text)
            urls |= urls_in(response.json())
    return urls


def test_every_url_import_example_emits_is_served(client: TestClient) -> None:
    emitted = _example_urls(client)
    # The fixture configs reach the image, audio, video and PDF samples...
    assert {u.rsplit("/", 1)[1] for u in emitted} >= {
        "sample.jpg",
        "game.wav",
        "opossum_snow.mp4",
        "sample.pdf",
    }
    # ...and every sample value of either mode is served too (the headless CSV included).
    every = emitted | urls_in({mode: dict(values) for mode, values in SAMPLES.items()})
    assert {u.rsplit("/", 1)[1] for u in every} == set(SAMPLE_MEDIA_TYPES)
    for url in sorted(every):
        # Sample values are relative to the page that shows them; the UI is served at "/".
        response = client.get("/" + url)
        name = url.rsplit("/", 1)[1]
        assert response.status_code == 200, url
        assert response.headers["content-type"].split(";")[0] == SAMPLE_MEDIA_TYPES[name]
        assert int(response.headers["content-length"]) == len(response.content) > 100


def test_sample_files_are_what_their_type_says(client: TestClient) -> None:
    def get(name: str) -> bytes:
        response = client.get(f"/static/samples/{name}")
        assert response.status_code == 200
        return response.content

    with Image.open(io.BytesIO(get("sample.jpg"))) as image:
        assert image.format == "JPEG" and image.size[0] > 0
    with wave.open(io.BytesIO(get("game.wav"))) as audio:
        assert audio.getnframes() > 0
    assert get("sample.pdf").startswith(b"%PDF-")
    assert get("opossum_snow.mp4")[4:8] == b"ftyp"
    rows = list(csv.reader(io.StringIO(get("sample-task-sin-headless.csv").decode())))
    assert len(rows) == 100 and len([float(cell) for cell in rows[0]]) == 3  # no header
    head = client.head("/static/samples/sample.jpg")
    assert head.status_code == 200 and head.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("name", ["nope.jpg", "..%2Fsample_media.py", "%2E%2E", "sample.JPG"])
def test_other_names_are_404(client: TestClient, name: str) -> None:
    response = client.get(f"/static/samples/{name}")
    assert response.status_code == 404
    assert response.json()["status"] == 404
