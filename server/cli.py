"""The ``labelgraph`` command: ``start``, ``start-multi-session`` and ``init``, like Label
Studio's."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.settings import SAMPLING_MODES, Settings

log = logging.getLogger("labelgraph")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labelgraph",
        description="A Label Studio 0.9-compatible labeling server with a GraphQL API.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def project_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("project_dir", help="project directory (database and upload/)")
        sub.add_argument("--label-config", help="labeling config XML file for a new project")
        sub.add_argument("--input-path", help="JSON file of tasks to import into a new project")
        sub.add_argument("--db", dest="database_url", help="database URL (default: SQLite file)")
        sub.add_argument("--sampling", choices=SAMPLING_MODES, help="next-task sampling")
        sub.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
        sub.add_argument(
            "--ml-backends",
            nargs="+",
            metavar="URL",
            help="ML backends (URL or NAME=URL) for a new project; ignored for an existing one",
        )

    start = commands.add_parser("start", help="start the server")
    project_options(start)
    start.add_argument("--init", action="store_true", help="create the project if needed")
    start.add_argument("--host", help="bind address (default 127.0.0.1)")
    start.add_argument("--port", type=int, help="port (default 8080)")
    start.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (use with PostgreSQL)"
    )
    init = commands.add_parser("init", help="create a project without starting the server")
    project_options(init)
    multi = commands.add_parser(
        "start-multi-session",
        help="start the server with one project per browser session (all in one database)",
    )
    multi.add_argument(
        "--root-dir",
        default=".",
        help="directory of the database, the session key and the projects (default: .)",
    )
    multi.add_argument("--db", dest="database_url", help="database URL (default: SQLite file)")
    multi.add_argument("--sampling", choices=SAMPLING_MODES, help="next-task sampling")
    multi.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    multi.add_argument("--host", help="bind address (default 127.0.0.1)")
    multi.add_argument("--port", type=int, help="port (default 8080)")
    multi.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (use with PostgreSQL)"
    )
    from server.export_cli import add_export_parser

    add_export_parser(commands)
    from server.import_cli import add_import_parser

    add_import_parser(commands)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    if args.command == "start-multi-session":
        root = str(Path(args.root_dir).resolve())
        overrides: dict[str, Any] = {"project_dir": root, "root_dir": root}
    else:
        # Single-project commands never run in multi-session mode, whatever the environment.
        overrides = {"project_dir": args.project_dir, "root_dir": ""}
    for name in ("database_url", "sampling", "log_level", "host", "port"):
        overrides[name] = getattr(args, name, None)
    return Settings.from_env(**overrides)


def _configure_logging(level: str) -> None:
    from server.logs import configure_logging

    configure_logging(level)  # with secrets masked in every line (server/logs.py)


def initialise(
    settings: Settings,
    label_config: str | None,
    input_path: str | None,
    ml_backends: Sequence[str] | None = None,
) -> bool:
    """Create the project (dir, database, config, tasks, ML backends); False if it already
    existed."""
    from server import db
    from server.app import prepare_database
    from server.services import projects
    from server.services.config import label_config as label_config_service
    from server.services.imports import json_import as imports
    from server.services.ml import backends as ml

    for spec in ml_backends or ():
        ml.check_url(ml.parse_backend_spec(spec, settings.project_name)[1])

    config_text = None
    if label_config is not None:
        config_text = Path(label_config).read_text(encoding="utf-8")
        label_config_service.parse(label_config_service.normalise(config_text))
    tasks = None
    if input_path is not None:
        tasks = json.loads(Path(input_path).read_text(encoding="utf-8"))
    project_id, created = prepare_database(settings)

    def setup() -> bool:
        project = projects.get_project(project_id)
        if project.task_count or project.label_config_updated:
            return False  # has data: never overwrite it
        if config_text is not None:
            projects.set_label_config(project_id, config_text)
            log.info("labeling config set from %s", label_config)
        if tasks is not None:
            result = imports.import_tasks(project_id, tasks)
            log.info("imported %d tasks from %s", len(result.task_ids), input_path)
        return True

    applied = db.with_connection(setup)
    if ml_backends and created:

        def connect_backends() -> None:
            for spec in ml_backends:
                backend = ml.add_backend(
                    None, project_id, spec, check_connection=False, trusted=True
                )
                log.info("ML backend %s added: %s", backend.name, backend.url)

        db.with_connection(connect_backends)
    elif ml_backends:
        log.info("project %s already exists: --ml-backends ignored", settings.project_dir)
    if created:
        log.info("project %s created", settings.project_dir)
    elif applied and (config_text is not None or tasks is not None):
        log.info("project %s existed but was empty: config/tasks applied", settings.project_dir)
    else:
        log.info("project %s already exists: keeping its data", settings.project_dir)
    return created


def _export_env(settings: Settings) -> None:
    """Hand the resolved settings to uvicorn worker processes through the environment."""
    for env, name, _default, _help in Settings.documented():
        os.environ[env] = str(getattr(settings, name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
    except ValueError as exc:
        parser.error(str(exc))
    _configure_logging(settings.log_level)
    if args.command == "export":
        from server.export_cli import run_export

        return run_export(args, settings)
    if args.command == "import":
        from server.import_cli import run_import

        return run_import(args, settings)
    if args.command == "start-multi-session":
        return serve(settings, workers=args.workers)
    from server.errors import DomainError

    project_exists = Path(settings.project_dir).is_dir()
    if args.command == "start" and not args.init and not project_exists:
        log.error(
            "project directory %s does not exist; create it with `labelgraph init %s` "
            "or add --init",
            settings.project_dir,
            settings.project_dir,
        )
        return 2
    try:
        if args.command == "init" or args.init:
            ml_backends = getattr(args, "ml_backends", None)
            initialise(settings, args.label_config, args.input_path, ml_backends)
    except (DomainError, OSError, ValueError) as exc:
        log.error("cannot initialise %s: %s", settings.project_dir, exc)
        return 2
    if args.command == "init":
        return 0
    return serve(settings, workers=args.workers)


def serve(settings: Settings, workers: int = 1) -> int:
    import uvicorn

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
        )
        return 0
    from server.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
