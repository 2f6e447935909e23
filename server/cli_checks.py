"""Start-up checks of the ``labelgraph`` command: the database and the listening address are
tried before anything is created or announced, and every failure becomes one line."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import peewee

from server.settings import Settings

T = TypeVar("T")
MAX_PORT = 65535
POSTGRES_CONNECT_TIMEOUT = 10  # seconds; an unreachable host otherwise waits on TCP's timeout


class CliError(Exception):
    """A failure the command reports as one line on stderr before exiting with status 2."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (psycopg2's span several)."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text or type(exc).__name__


def port_number(raw: str) -> int:
    """argparse type of ``--port``: an integer in 1-65535."""
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number") from None
    if not 1 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-{MAX_PORT})")
    return port


def safe_url(url: str) -> str:
    """A database URL without its credentials, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def check_database(settings: Settings) -> None:
    """Raise :class:`CliError` unless the database URL names a database that answers.

    Nothing is created: a SQLite file that does not exist yet is fine when its directory does
    (or is the project/root directory, which the command creates)."""
    from server import db

    url = settings.resolved_database_url
    try:
        database = db.make_database(url, pool_size=1)
    except ValueError as exc:
        raise CliError(one_line(exc)) from None
    if isinstance(database, peewee.SqliteDatabase):
        _check_sqlite_file(database.database, settings)
        return
    database.connect_params.setdefault("connect_timeout", POSTGRES_CONNECT_TIMEOUT)
    try:
        database.connect()
        database.execute_sql("SELECT 1")  # type: ignore[no-untyped-call]
    except (peewee.DatabaseError, peewee.InterfaceError, peewee.ImproperlyConfigured) as exc:
        raise CliError(f"cannot connect to the database {safe_url(url)}: {one_line(exc)}") from None
    finally:
        if hasattr(database, "close_all"):
            database.close_all()
        else:  # pragma: no cover - every database make_database builds is pooled
            database.close()


def _check_sqlite_file(path: str, settings: Settings) -> None:
    if path == ":memory:":
        return
    file = Path(path)
    home = Path(settings.root_dir if settings.multi_session else settings.project_dir)
    if file.is_dir():
        raise CliError(f"the SQLite database {path} is a directory")
    if not file.parent.is_dir() and file.parent.resolve() != home.resolve():
        raise CliError(f"cannot open the SQLite database {path}: {file.parent} does not exist")
    if not file.exists():
        return
    database = peewee.SqliteDatabase(path)
    try:
        database.connect()
        database.execute_sql("PRAGMA schema_version")  # type: ignore[no-untyped-call]
    except peewee.DatabaseError as exc:
        raise CliError(f"cannot use the SQLite database {path}: {one_line(exc)}") from None
    finally:
        database.close()


def database_step(what: str, fn: Callable[[], T]) -> T:
    """Run a step that uses the database; its database or file-system failure becomes a
    :class:`CliError` naming ``what`` failed."""
    from server.errors import DomainError

    try:
        return fn()
    except (peewee.DatabaseError, peewee.InterfaceError, OSError) as exc:
        raise CliError(f"{what}: {one_line(exc)}") from None
    except DomainError as exc:  # e.g. the database belongs to another project
        raise CliError(f"{what}: {exc.message}") from None


def check_listen_address(host: str, port: int) -> None:
    """Raise :class:`CliError` unless ``host:port`` can be bound now (not in use, a local
    address). Binds and releases at once, as uvicorn will (with ``SO_REUSEADDR``)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise CliError(f"cannot listen on {host}:{port}: {one_line(exc)}") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            reason = exc.strerror or one_line(exc)
            raise CliError(f"cannot listen on {host}:{port}: {reason.lower()}") from None
