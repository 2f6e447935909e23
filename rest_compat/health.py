"""/api/health and /version."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from rest_compat._http import Operation, answer, endpoint, execute
from server.principal import Role

HEALTH = Operation("query RestHealth { health }", on_loop=True)
VERSION = Operation(
    "query RestVersion { version { labelgraph labelStudioBackend"
    " labelStudioFrontend { branch commit date message }"
    " labelStudioDatamanager { branch commit date message } } }",
    on_loop=True,
)


@endpoint("/health", "GET", HEALTH, permission=Role.PUBLIC)
async def health_get(request: Request) -> Response:
    data = await execute(request, HEALTH)
    return answer({"status": data["health"]}, 200, HEALTH)


@endpoint("/version", "GET", VERSION, under_api=False, permission=Role.ANNOTATOR)
async def version_get(request: Request) -> Response:
    """``GET /version`` (outside /api): versions of the backend and the bundled UIs."""
    version = (await execute(request, VERSION))["version"]
    body = {
        "label-studio-backend": version["labelStudioBackend"],
        "labelgraph": version["labelgraph"],
        "label-studio-frontend": version["labelStudioFrontend"],
        "label-studio-datamanager": version["labelStudioDatamanager"],
    }
    return answer(body, 200, VERSION)
