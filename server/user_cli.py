"""``labelgraph user add|list|disable|enable`` and ``labelgraph token create|list|revoke``.

Passwords are asked with ``getpass`` (twice), or read from the first line of stdin with
``--password-stdin`` (scripts); they never appear on the command line. A new token is printed
once on stdout (everything else goes to stderr) and only its hash is stored.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import time
from pathlib import Path
from typing import Any

from server.cli_checks import CliError, check_database, database_step
from server.settings import Settings

log = logging.getLogger("labelgraph")
COMMANDS = ("user", "token")


def _location(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--project-dir", help="project directory (default: $LABELGRAPH_PROJECT_DIR)")
    sub.add_argument("--root-dir", help="root directory of a start-multi-session server instead")
    sub.add_argument("--db", dest="database_url", help="database URL (default: SQLite file)")
    sub.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")


def add_user_parsers(commands: Any) -> None:
    user = commands.add_parser("user", help="manage users (then anonymous requests are refused)")
    user_commands = user.add_subparsers(dest="action", required=True)
    add = user_commands.add_parser("add", help="create a user (password asked)")
    add.add_argument("name", help="user name: letters, digits and _ . @ + -")
    add.add_argument("--role", choices=("admin", "annotator"), default="annotator")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    _location(add)
    listing = user_commands.add_parser("list", help="list users")
    _location(listing)
    for action, what in (
        ("disable", "disable a user: ends their logins, stops their tokens"),
        ("enable", "enable a disabled user again"),
    ):
        switch = user_commands.add_parser(action, help=what)
        switch.add_argument("name", help="the user's name")
        _location(switch)

    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="action", required=True)
    create = token_commands.add_parser("create", help="create a token for a user (shown once)")
    create.add_argument("name", help="the user's name")
    create.add_argument("--expires", type=int, metavar="DAYS", help="valid for DAYS days")
    create.add_argument("--label", default="", help="a name for the token")
    _location(create)
    tokens = token_commands.add_parser("list", help="list tokens (never their values)")
    tokens.add_argument("name", nargs="?", help="only this user's")
    _location(tokens)
    revoke = token_commands.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id", type=int)
    _location(revoke)


def location_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``project_dir``/``root_dir`` settings of a user or token command."""
    if args.root_dir:
        root = str(Path(args.root_dir).resolve())
        return {"project_dir": root, "root_dir": root}
    return {"project_dir": args.project_dir, "root_dir": ""}


def _open_database(settings: Settings) -> None:
    from server import db
    from server.migrations import migrate

    home = Path(settings.root_dir or settings.project_dir)
    if not home.is_dir():
        raise CliError(f"directory {home} does not exist (start the server there first)")
    check_database(settings)
    db.connect(settings.resolved_database_url, 1, write_wait=settings.write_wait)
    database_step(f"cannot open the database of {home}", lambda: db.with_connection(migrate))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        raise CliError("the passwords differ")
    return first


def _when(seconds: int | None) -> str:
    return "-" if seconds is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


def run_user_command(args: argparse.Namespace, settings: Settings) -> int:
    from server import db
    from server.errors import DomainError
    from server.services.auth import tokens, users

    _open_database(settings)
    try:
        if args.command == "user" and args.action == "add":
            password = _read_password(args.password_stdin)
            user = db.with_connection(users.add_user, args.name, password, args.role)
            log.info("user %s (%s) created", user.username, user.role)
        elif args.command == "user" and args.action in ("disable", "enable"):
            enabled = args.action == "enable"
            user = db.with_connection(users.set_enabled, args.name, enabled)
            log.info("user %s %s", user.username, "enabled" if enabled else "disabled")
        elif args.command == "user":
            for user in db.with_connection(users.list_users):
                state = "disabled" if user.disabled_at is not None else "enabled"
                print(f"{user.id}\t{user.username}\t{user.role}\t{_when(user.created_at)}\t{state}")
        elif args.action == "create":
            user = db.with_connection(users.find_user, args.name)
            new = db.with_connection(tokens.create_token, user.id, args.label, args.expires)
            log.info(
                "token %d for %s (expires %s); it is shown only now:",
                new.row.id,
                user.username,
                _when(new.row.expires_at),
            )
            print(new.token)
        elif args.action == "list":
            owner = db.with_connection(users.find_user, args.name).id if args.name else None
            for row in db.with_connection(tokens.list_tokens, owner):
                print(
                    f"{row.id}\t{row.user.username}\t{row.prefix}…\t{row.name}\t"
                    f"created {_when(row.created_at)}\texpires {_when(row.expires_at)}\t"
                    f"used {_when(row.last_used_at)}"
                )
        else:
            db.with_connection(tokens.revoke_token, args.id)
            log.info("token %d revoked", args.id)
    except DomainError as exc:
        raise CliError(exc.message) from None
    return 0
