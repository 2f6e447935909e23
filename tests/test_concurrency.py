"""The event loop never waits on the database: health answers during a large import."""

from __future__ import annotations

import anyio
import httpx
import pytest

from server.app import create_app
from server.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_health_answers_while_a_large_import_runs(settings: Settings) -> None:
    app = create_app(settings)
    tasks = [{"text": f"task number {i} " * 4} for i in range(150_000)]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            import_done = anyio.Event()
            health_during_import: list[int] = []

            async def run_import() -> None:
                response = await client.post("/api/project/import", json=tasks)
                assert response.status_code == 201
                import_done.set()

            async with anyio.create_task_group() as group:
                group.start_soon(run_import)
                await anyio.sleep(0.05)  # let the import reach its worker thread
                while not import_done.is_set() and len(health_during_import) < 5:
                    response = await client.get("/api/health")
                    assert response.json() == {"status": "up"}
                    if not import_done.is_set():
                        health_during_import.append(response.status_code)
            assert health_during_import, "the import finished before health could answer"
            body = (await client.get("/api/tasks?page=1&page_size=1")).json()
            assert body["total"] == 150_000
