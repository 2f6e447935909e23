"""A hung ML backend never stalls the server: while requests wait on a backend that sleeps 30 s,
/api/health and GET /api/tasks answer in milliseconds."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import anyio
import httpx
import pytest

from server.app import create_app
from server.settings import Settings
from tests.conftest import fixture_text
from tests.ml_backend import RunningBackend

pytestmark = pytest.mark.anyio
TIMEOUT = 1.5  # the /predict timeout in this test (the default is 10 s)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_hung_backend_does_not_slow_other_requests(
    settings: Settings, start_ml_backend: Callable[..., RunningBackend]
) -> None:
    hung = start_ml_backend("--sleep", "30")
    app = create_app(dataclasses.replace(settings, ml_predict_timeout=TIMEOUT))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            config = fixture_text("configs/sentiment.xml")
            await client.post("/api/project/config", data={"label_config": config})
            await client.post("/api/project/import", json=[{"text": f"t{i}"} for i in range(50)])
            connected = await client.patch("/api/project", json={"ml_backend": f"m={hung.url}"})
            assert connected.status_code == 201

            slow: dict[str, float] = {}
            quick: list[float] = []

            async def timed(name: str, method: str, url: str) -> None:
                started = time.perf_counter()
                response = await client.request(method, url)
                assert response.status_code == 200, response.text
                slow[name] = time.perf_counter() - started

            async with anyio.create_task_group() as group:
                group.start_soon(timed, "task", "GET", "/api/tasks/1")
                group.start_soon(timed, "next", "GET", "/api/project/next")
                group.start_soon(timed, "job", "POST", "/api/models/predictions?mode=all_tasks")
                await anyio.sleep(0.3)  # all three now wait on /predict
                while len(slow) < 3:
                    for url in ("/api/health", "/api/tasks?page=1&page_size=10"):
                        started = time.perf_counter()
                        response = await client.get(url)
                        assert response.status_code == 200
                        if len(slow) < 3:
                            quick.append(time.perf_counter() - started)
                    await anyio.sleep(0.02)

            assert len(quick) >= 20, quick
            assert max(quick) < 0.5, sorted(quick)[-5:]
            assert all(TIMEOUT <= seconds < TIMEOUT + 3 for seconds in slow.values()), slow
            # Two live rounds, and the job's first batches in flight (then it gave up).
            assert 3 <= len(hung.requests("/predict")) <= 2 + settings.ml_job_concurrency

            # The backend timed out: for a while, live predictions skip it at once.
            started = time.perf_counter()
            task = (await client.get("/api/tasks/2")).json()
            assert time.perf_counter() - started < 0.5
            assert "predictions" not in task
