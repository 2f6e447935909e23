"""An export runs on a worker thread: health keeps answering while a slow export is written."""

from __future__ import annotations

import time
import zipfile
from io import BytesIO
from typing import Any

import anyio
import httpx
import pytest

from server.app import create_app
from server.services.export import text_writers as export_writers
from server.settings import Settings
from tests.conftest import fixture_text

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_health_answers_while_an_export_runs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = export_writers.JsonWriter.document

    def slow_document(self: Any, task: Any) -> Any:
        time.sleep(0.005)  # a blocking writer: only harmless off the event loop
        return original(self, task)

    monkeypatch.setattr(export_writers.JsonWriter, "document", slow_document)
    app = create_app(settings)
    tasks = [{"data": {"text": f"t{i}"}, "completions": [{"result": []}]} for i in range(200)]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            config = {"label_config": fixture_text("configs/sentiment.xml")}
            assert (await client.post("/api/project/config", data=config)).status_code == 201
            assert (await client.post("/api/project/import", json=tasks)).status_code == 201
            done = anyio.Event()
            answered: list[float] = []
            content: list[bytes] = []

            async def run_export() -> None:
                response = await client.get("/api/project/export?format=JSON")
                assert response.status_code == 200
                content.append(response.content)
                done.set()

            async with anyio.create_task_group() as group:
                group.start_soon(run_export)
                await anyio.sleep(0.05)
                while not done.is_set() and len(answered) < 5:
                    started = time.monotonic()
                    response = await client.get("/api/health")
                    assert response.json() == {"status": "up"}
                    if not done.is_set():
                        answered.append(time.monotonic() - started)
            assert answered, "the export finished before health could answer"
            assert max(answered) < 0.5
            with zipfile.ZipFile(BytesIO(content[0])) as archive:
                assert archive.read("result.json").count(b'"completions"') == 200
