"""``GET /static/samples/<name>``: the sample media that ``/api/import-example`` points to.

Sample tasks name ``static/samples/sample.jpg``, ``game.wav`` and the like, as Label Studio's
do; these are small files of labelgraph's own (``scripts/make_sample_media.py`` made them),
served from the package with a fixed content type each. Only the names below are reachable.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

SAMPLES_DIR = Path(__file__).resolve().parent / "static" / "samples"
SAMPLE_MEDIA_TYPES = {
    "sample.jpg": "image/jpeg",
    "game.wav": "audio/wav",
    "opossum_snow.mp4": "video/mp4",
    "sample.pdf": "application/pdf",
    "sample-task-sin-headless.csv": "text/csv",
}


async def sample_media(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = SAMPLE_MEDIA_TYPES.get(name)
    if media_type is None:
        return JSONResponse({"status": 404, "detail": f"Not found: {request.url.path}"}, 404)
    return FileResponse(SAMPLES_DIR / name, media_type=media_type)
