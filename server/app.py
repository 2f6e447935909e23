"""create_app(settings) -> the ASGI application: GraphQL, the REST facade, lifespan."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp

import rest_compat
from schema import schema
from schema.context import Context, request_context
from schema.stored import POSTGRES_LANE_THREADS, OperationThreads
from server import db
from server.access_log import with_access_log
from server.auth_state import AuthState
from server.authentication import Authentication
from server.cors import parse_origins
from server.downloads import export_download
from server.gc_pause import startup_objects_frozen
from server.graphql_csrf import PreflightRequired
from server.graphql_http import GraphQLOverHTTP
from server.graphql_json import RefusedGraphQLBody, decode_graphql_json
from server.host_check import host_rule
from server.json_depth import DEFAULT_MAX_JSON_DEPTH
from server.live import LiveRuntime
from server.live_frames import ResultFrames
from server.live_operations import LegacyWSHandler, TransportWSHandler
from server.live_socket import LiveSocketGuard
from server.login_page import login_page, logout_post
from server.middleware import FrontDoor
from server.migrations import migrate
from server.multi_session import COOKIE, MultiSession, session_key
from server.principal import OPEN, SCOPE_KEY, Role
from server.route_guard import guarded
from server.sample_media import sample_media
from server.services.ml.job_runner import MLRuntime
from server.services.project_home import open_home_project
from server.services.projects import get_project
from server.services.storage.runtime import StorageRuntime
from server.settings import Settings
from server.uploads import upload_file
from server.web_ui import app_page, graphiql_page
from server.web_ui import assets as web_ui_assets

log = logging.getLogger(__name__)


class GraphQLApp(GraphQLOverHTTP[Context]):
    max_json_depth = DEFAULT_MAX_JSON_DEPTH
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.result_frames = ResultFrames()

    def encode_json(self, data: object) -> str | bytes:
        """Subscription results through :class:`ResultFrames` (one encoding per shared result),
        everything else as Strawberry encodes it."""
        frame = self.result_frames.encode(data)
        return super().encode_json(data) if frame is None else frame

    async def get_context(self, request: Any, response: Any) -> Context:
        return request_context(request, response)

    def decode_json(self, data: str | bytes) -> object:
        return decode_graphql_json(data, self.max_json_depth)

    async def render_graphql_ide(self, request: Any) -> Response:
        """GraphiQL bundled into the package (server/web_ui.py), not Strawberry's CDN page."""
        return graphiql_page()

    async def run(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Run the operation; then close uploaded files (multipart requests) at once."""
        try:
            return await super().run(request, *args, **kwargs)
        except RefusedGraphQLBody as refused:
            return refused.response()
        finally:
            if isinstance(request, Request):
                await request.close()


def project_name_of(project_id: int) -> str:
    return str(get_project(project_id).name)


def prepare_database(settings: Settings) -> tuple[int, bool]:
    """Connect, migrate and make sure the project exists; return (its id, created)."""
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    db.connect(
        settings.resolved_database_url,
        settings.db_pool_size,
        settings.db_prepared_statements,
        settings.write_wait,
        settings.db_pool_wait,
    )

    def setup() -> tuple[int, bool]:
        migrate()
        opened = open_home_project(
            settings.project_name,
            requested_name=settings.project,
            database_in_directory=not settings.database_url,
            sampling=settings.sampling,
        )
        if opened.renamed_from is not None:
            log.warning(
                "the project directory is now called %r: opening this database's project %r",
                opened.renamed_from,
                opened.project.name,
            )
        return opened.project.id, opened.created

    return db.with_connection(setup)


async def not_found(request: Request, exc: Exception) -> Response:
    detail = f"Not found: {request.url.path}"
    return JSONResponse({"status": 404, "detail": detail}, 404)


async def index(request: Request) -> Response:
    """The labeling app; the login page first for anonymous callers of a server with users."""
    if not request.scope.get(SCOPE_KEY, OPEN).authenticated:
        return RedirectResponse("/login?next=/")
    return await app_page(request)


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        if settings.multi_session:
            prepare_root(settings)
            app.state.project_id = None
            app.state.multi_session = MultiSession(settings)
            log.info(
                "multi-session mode in %s (database %s)", settings.root_dir, _safe_url(settings)
            )
        else:
            app.state.project_id, _ = prepare_database(settings)
            app.state.project_name = db.with_connection(project_name_of, app.state.project_id)
            log.info("project %s ready (database %s)", settings.project_dir, _safe_url(settings))
        app.state.auth = auth
        auth.open()
        app.state.ml = MLRuntime.open(settings)
        app.state.storage = StorageRuntime.open(settings)
        app.state.live = await LiveRuntime.open(settings)
        app.state.operation_threads = OperationThreads()
        # Short writes on threads of their own, one on SQLite (schema/stored.py)
        app.state.write_lane = OperationThreads(
            1 if db.is_sqlite() else POSTGRES_LANE_THREADS,
            name="labelgraph-write-lane",
            queued_writes=True,
        )
        switch_interval = sys.getswitchinterval()
        if settings.thread_switch_interval > 0:
            # Requests run on the event loop and the operation threads, all wanting the one
            # interpreter lock; a thread coming back from a database call (the holder of
            # SQLite's write turn among them) waits for it at most this long.
            sys.setswitchinterval(settings.thread_switch_interval)
        try:
            with startup_objects_frozen():  # full GC collections skip them (server.gc_pause)
                yield
        finally:
            sys.setswitchinterval(switch_interval)
            await anyio.to_thread.run_sync(app.state.operation_threads.close)
            await anyio.to_thread.run_sync(app.state.write_lane.close)
            await anyio.to_thread.run_sync(app.state.live.close)
            # Let running prediction jobs finish their batch (bounded by the ML timeouts), and
            # storage syncs their current call (bounded by the storage timeout).
            auth.close()
            await anyio.to_thread.run_sync(app.state.ml.close)
            await anyio.to_thread.run_sync(app.state.storage.close, settings.storage_timeout + 1)
            pool = db.database.obj
            if pool is not None and hasattr(pool, "close_all"):
                pool.close_all()

    auth = AuthState(settings)
    graphql_app = GraphQLApp(
        schema,
        graphql_ide="graphiql",
        multipart_uploads_enabled=True,
        keep_alive=True,
        keep_alive_interval=settings.live_keep_alive_interval,
        max_subscriptions_per_connection=settings.live_max_subscriptions_per_connection,
        allowed_origins=sorted(parse_origins(settings.cors_origins)),
    )
    graphql_app.max_json_depth = settings.max_json_depth
    routes = [
        # First: the REST facade's table (the hot paths) answers its own paths without the
        # router trying the others' patterns; no path matches both (tests/test_app_routes.py).
        *rest_compat.routes(),
        Route("/", guarded(Role.PUBLIC, index), methods=["GET", "HEAD"]),
        Mount("/static/app", app=guarded(Role.PUBLIC, web_ui_assets())),
        Route(
            "/graphql",
            guarded(Role.PUBLIC, PreflightRequired(graphql_app)),  # fields: schema.permissions
            methods=["GET", "POST"],
        ),
        WebSocketRoute(
            "/graphql",
            LiveSocketGuard(graphql_app, settings.live_max_connections, settings.live_idle_timeout),
        ),
        Route("/data/export/{name}", guarded(Role.ADMIN, export_download), methods=["GET", "HEAD"]),
        Route(
            "/data/upload/{name:path}",
            guarded(Role.ANNOTATOR, upload_file),
            methods=["GET", "HEAD"],
        ),
        Route(
            "/static/samples/{name}", guarded(Role.PUBLIC, sample_media), methods=["GET", "HEAD"]
        ),
        Route("/login", guarded(Role.PUBLIC, login_page), methods=["GET", "POST"]),
        Route("/logout", guarded(Role.PUBLIC, logout_post), methods=["POST"]),
    ]
    middleware = [front_door(settings), Middleware(Authentication, auth=auth)]
    if settings.multi_session:
        middleware.append(
            Middleware(
                SessionMiddleware,
                secret_key=session_key(Path(settings.root_dir)),
                session_cookie=COOKIE,
                max_age=settings.session_max_age or None,
                same_site="lax",
            )
        )
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers={**rest_compat.exception_handlers, 404: not_found},
    )


def front_door(settings: Settings) -> Middleware:
    """The checks every request passes first: Host (DNS rebinding), cross-origin writes, body
    read timeout and size; then Label Studio's headers (server/middleware.py: FrontDoor)."""
    return Middleware(
        FrontDoor,
        rule=host_rule(settings.host, settings.port, settings.allowed_hosts),
        allowed_origins=parse_origins(settings.cors_origins),
        limit=settings.max_body_size,
        timeout=settings.body_timeout,
    )


def prepare_root(settings: Settings) -> None:
    """Multi-session mode: the root directory, the database connected and migrated."""
    Path(settings.root_dir).mkdir(parents=True, exist_ok=True)
    db.connect(
        settings.resolved_database_url,
        settings.db_pool_size,
        settings.db_prepared_statements,
        settings.write_wait,
        settings.db_pool_wait,
    )
    db.with_connection(migrate)


def _safe_url(settings: Settings) -> str:
    url = settings.resolved_database_url
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def app_from_env() -> ASGIApp:
    """Factory for ``uvicorn --factory`` (several workers): settings from LABELGRAPH_* vars,
    with the access log of ``labelgraph start`` (server/access_log.py)."""
    settings = Settings.from_env()
    return with_access_log(create_app(settings), settings.log_level)
