"""The ``labelgraph`` command: ``start``, ``start-multi-session`` and ``init``, like Label
Studio's, plus ``import`` and ``export``.

Every failure the user can fix (a bad ``--db``, a port in use, a missing project) is one line
on stderr and exit status 2, reported before the server announces its URL.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from server.cli_checks import (
    CliError,
    check_database,
    check_listen_address,
    database_step,
    port_number,
)
from server.settings import ENV_PREFIX, SAMPLING_MODES, Settings
from server.user_cli import COMMANDS as USER_COMMANDS
from server.user_cli import location_overrides

log = logging.getLogger("labelgraph")
PROJECT_DIR_ENV = ENV_PREFIX + "PROJECT_DIR"
ROOT_DIR_ENV = ENV_PREFIX + "ROOT_DIR"


def version() -> str:
    try:
        return metadata.version("labelgraph")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a plain checkout
        return "unknown"


def add_project_dir(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "project_dir",
        nargs="?",
        help=f"project directory (database and upload/); default: ${PROJECT_DIR_ENV}",
    )


def add_server_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--host", help="bind address (default 127.0.0.1)")
    sub.add_argument("--port", type=port_number, help="port, 1-65535 (default 8080)")
    sub.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes (PostgreSQL, or SQLite on one host)",
    )


HTTP_OPTIONS = ("cors_origins", "allowed_hosts")
AUTH_OPTIONS = ("username", "password", "proxy_headers")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labelgraph",
        description="A Label Studio 0.9-compatible labeling server with a GraphQL API.",
    )
    parser.add_argument("--version", action="version", version=f"labelgraph {version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    def project_options(sub: argparse.ArgumentParser) -> None:
        add_project_dir(sub)
        sub.add_argument(
            "--label-config",
            help="labeling config XML file; replaces an existing project's config if it differs",
        )
        sub.add_argument(
            "--input-path",
            help="JSON file of tasks to import when the project has no tasks yet",
        )
        sub.add_argument("--db", dest="database_url", help="database URL (default: SQLite file)")
        sub.add_argument(
            "--project-name",
            dest="project",
            help="project to open in the database (default: the database's own project)",
        )
        sub.add_argument("--sampling", choices=SAMPLING_MODES, help="next-task sampling")
        sub.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
        sub.add_argument(
            "--ml-backends",
            nargs="+",
            metavar="URL",
            help="ML backends (URL or NAME=URL) for a new project; not applied to an existing one",
        )

    def http_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--cors-origins",
            metavar="ORIGINS",
            help="comma-separated origins (scheme://host[:port]) allowed to send writes",
        )
        sub.add_argument(
            "--allowed-hosts",
            metavar="HOSTS",
            help="comma-separated extra names accepted in the Host header (* = any)",
        )
        sub.add_argument(
            "--proxy-headers",
            action="store_true",
            default=None,
            help="trust X-Forwarded-Proto/-For (only behind a proxy that sets them)",
        )

    start = commands.add_parser("start", help="start the server")
    project_options(start)
    start.add_argument("--init", action="store_true", help="create the project if needed")
    start.add_argument("--username", help="HTTP Basic auth user name (default ls)")
    start.add_argument(
        "--password", help="HTTP Basic auth password; non-empty = Basic auth on (as Label Studio)"
    )
    add_server_options(start)
    http_options(start)
    init = commands.add_parser("init", help="create a project without starting the server")
    project_options(init)
    multi = commands.add_parser(
        "start-multi-session",
        help="start the server with one project per browser session (all in one database)",
    )
    multi.add_argument(
        "--root-dir",
        help=f"directory of the database, the session key and the projects "
        f"(default: ${ROOT_DIR_ENV} or .)",
    )
    multi.add_argument("--db", dest="database_url", help="database URL (default: SQLite file)")
    multi.add_argument("--sampling", choices=SAMPLING_MODES, help="next-task sampling")
    multi.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    add_server_options(multi)
    http_options(multi)
    from server.export_cli import add_export_parser

    add_export_parser(commands)
    from server.import_cli import add_import_parser

    add_import_parser(commands)
    from server.user_cli import add_user_parsers

    add_user_parsers(commands)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    if args.command == "start-multi-session":
        root = str(Path(args.root_dir or os.environ.get(ROOT_DIR_ENV) or ".").resolve())
        overrides: dict[str, Any] = {"project_dir": root, "root_dir": root}
    elif args.command in USER_COMMANDS and args.root_dir:
        overrides = location_overrides(args)
    else:
        # Single-project commands never run in multi-session mode, whatever the environment.
        project_dir = args.project_dir or os.environ.get(PROJECT_DIR_ENV)
        if not project_dir:
            raise ValueError(f"no project directory: give PROJECT_DIR or set {PROJECT_DIR_ENV}")
        overrides = {"project_dir": project_dir, "root_dir": ""}
    for name in (
        "database_url",
        "project",
        "sampling",
        "log_level",
        "host",
        "port",
        *HTTP_OPTIONS,
        *AUTH_OPTIONS,
    ):
        overrides[name] = getattr(args, name, None)
    return Settings.from_env(**overrides)


def _configure_logging(level: str) -> None:
    from server.logs import configure_logging

    configure_logging(level)  # with secrets masked in every line (server/logs.py)


def _export_env(settings: Settings) -> None:
    """Hand the resolved settings to uvicorn worker processes through the environment."""
    for env, name, _default, _help in Settings.documented():
        os.environ[env] = str(getattr(settings, name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "import":
        from server.import_cli import resolve_project_dir

        resolve_project_dir(args, parser)
    try:
        settings = _settings(args)
    except ValueError as exc:
        parser.error(str(exc))
    _configure_logging(settings.log_level)
    try:
        return _run(args, settings)
    except CliError as exc:
        log.error("%s", exc)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "export":
        from server.export_cli import run_export

        return run_export(args, settings)
    if args.command == "import":
        from server.import_cli import run_import

        return run_import(args, settings)
    if args.command in USER_COMMANDS:
        from server.user_cli import run_user_command

        return run_user_command(args, settings)
    if args.command == "start-multi-session":
        return _start_multi_session(args, settings)
    return _start_or_init(args, settings)


def _start_multi_session(args: argparse.Namespace, settings: Settings) -> int:
    from server.app import prepare_root

    check_database(settings)
    check_listen_address(settings.host, settings.port)
    database_step(f"cannot prepare {settings.root_dir}", lambda: prepare_root(settings))
    return serve(settings, workers=args.workers)


def _start_or_init(args: argparse.Namespace, settings: Settings) -> int:
    from server.cli_project import initialise
    from server.errors import DomainError

    creating = args.command == "init" or args.init
    if not creating and not Path(settings.project_dir).is_dir():
        raise CliError(
            f"project directory {settings.project_dir} does not exist; create it with "
            f"`labelgraph init {settings.project_dir}` or add --init"
        )
    check_database(settings)
    if args.command == "start":
        check_listen_address(settings.host, settings.port)
    try:
        created = initialise(settings, args.label_config, args.input_path, args.ml_backends)
    except (DomainError, OSError, ValueError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        raise CliError(f"cannot initialise {settings.project_dir}: {message}") from None
    if created:
        log.info("project %s created", settings.project_dir)
    elif creating:
        log.info("project %s already exists: keeping its data", settings.project_dir)
    if args.command == "init":
        return 0
    return serve(settings, workers=args.workers)


def serve(settings: Settings, workers: int = 1) -> int:
    import uvicorn

    from server import db
    from server.http_protocol import HeaderLimits, uvicorn_options

    pool = db.database.obj
    if pool is not None and hasattr(pool, "close_all"):
        pool.close_all()  # the server opens its own connections
    check_listen_address(settings.host, settings.port)  # again: set-up may have taken a while
    limits = uvicorn_options(HeaderLimits(settings.max_header_size, settings.max_header_count))
    log.info(
        "labelgraph on http://%s:%d  (GraphQL: /graphql, REST: /api)%s",
        settings.host,
        settings.port,
        f", multi-session in {settings.root_dir}" if settings.multi_session else "",
    )
    if workers > 1:
        _export_env(settings)
        uvicorn.run(
            "server.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level=settings.log_level.lower(),
            access_log=False,  # the app writes it: server/access_log.py
            proxy_headers=settings.proxy_headers,
            **limits,
        )
        return 0
    from server.access_log import with_access_log
    from server.app import create_app

    uvicorn.run(
        with_access_log(create_app(settings), settings.log_level),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=settings.proxy_headers,
        **limits,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
