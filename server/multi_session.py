"""``start-multi-session`` mode (rest-api.md §7.5): the signed session cookie and the current
project of each browser session.

The cookie is Starlette's signed ``session`` cookie (itsdangerous), signed with a key that is
generated into ``<root_dir>/session.key`` (mode 0600) on first start and read from there after.
It holds ``session_id``, ``user`` (a uuid4), ``project`` (the current project's uuid) and
``shared_projects`` (uuids of other users' projects the session switched to), created on the
first request that needs a project. The project row (and its directory) is created by the
session's first write: requests that only read (``GET /api/project``, ``/api/health``) create
nothing, so cookieless requests cannot fill the database.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from server.db import run_db
from server.errors import DomainError
from server.models import Project
from server.principal import OPEN, SCOPE_KEY, Role
from server.services import session_projects
from server.settings import Settings
from server.state_values import state_value

KEY_FILE = "session.key"
COOKIE = "session"


def session_key(root_dir: Path) -> str:
    """The signing key kept in the root directory, generated (0600) on first start."""
    root_dir.mkdir(parents=True, exist_ok=True)
    path = root_dir / KEY_FILE
    if not path.exists():
        # Written whole under another name, then linked into place: worker processes starting
        # together all end up with the one key that won, never with a half-written file.
        partial = root_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ValueError(f"{path} holds no usable session key; delete it to make a new one")
    return key


class MultiSession:
    """Process-wide multi-session state (``app.state.multi_session``): where project
    directories live and which project each uuid is (uuids and names never change)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.root_dir)
        self._known: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def remember(self, project: Project) -> tuple[int, str]:
        entry = (project.id, project.name)
        with self._lock:
            if len(self._known) > 100_000:
                self._known.clear()
            self._known[project.uuid] = entry
        return entry

    def known(self, project_uuid: str) -> tuple[int, str] | None:
        with self._lock:
            return self._known.get(project_uuid)

    def prepare_dirs(self, project_name: str) -> None:
        self.settings.for_project(project_name).upload_dir.mkdir(parents=True, exist_ok=True)


class SessionProject:
    """One request's session: its user and current project (resolved once, lazily).

    With users (``account``: the signed-in user's id) the session's user is that account
    (``user-<id>``), so its projects follow the person, not the browser; it reaches its own
    projects and those an admin shared with it (admins: every project). Without users a
    session is a uuid4 and reaches any project whose uuid it knows, as in Label Studio."""

    def __init__(
        self,
        runtime: MultiSession,
        session: MutableMapping[str, Any],
        account: int | None = None,
        admin: bool = False,
    ) -> None:
        self.runtime = runtime
        self.session = session
        self.account = account
        self.admin = admin
        self._current: tuple[int, str] | None = None
        self._shares: list[str] | None = None
        if account is not None and session.get("account") != account:
            # Another account (or none) used this browser session before: start afresh.
            for key in ("user", "session_id", "project", "shared_projects"):
                session.pop(key, None)
            session["account"] = account

    @property
    def user(self) -> str:
        if self.account is not None:
            return f"user-{self.account}"
        if "user" not in self.session:
            self.session["user"] = str(uuid.uuid4())
        if "session_id" not in self.session:
            self.session["session_id"] = str(uuid.uuid4())
        return str(self.session["user"])

    @property
    def project_uuid(self) -> str:
        if "project" not in self.session:
            self.user  # noqa: B018  (a new session gets its user first)
            self.session["project"] = str(uuid.uuid4())
        return str(self.session["project"])

    @property
    def shared(self) -> list[str]:
        if self.account is not None:  # shared by an admin (database work: a worker thread)
            if self._shares is None:
                from server.services.auth.shares import shared_with

                self._shares = shared_with(self.account)
            return self._shares
        value = self.session.get("shared_projects")
        return list(value) if isinstance(value, dict) else []

    def current(self) -> tuple[int, str]:
        """(id, name) of the current project, stored now if it is not yet (a write needs
        it). Database work: call on a worker thread."""
        found = self.stored()
        if found is None:
            project = session_projects.open_project(
                self.user, self.project_uuid, self.runtime.settings.sampling
            )
            found = self.runtime.remember(project)
            self.runtime.prepare_dirs(project.name)
            self._current = found
        return found

    def stored(self) -> tuple[int, str] | None:
        """(id, name) of the current project, or None while it is not stored (nothing is
        created). Database work: call on a worker thread."""
        if self._current is None and "project" in self.session:
            project_uuid = self.project_uuid
            found = self.runtime.known(project_uuid)
            if found is None:
                project = session_projects.stored_project(project_uuid)
                found = None if project is None else self.runtime.remember(project)
            if found is not None and not self._still_reachable(project_uuid, found[1]):
                self.session.pop("project", None)  # its share was taken back
                found = None
            self._current = found
        return self._current

    def _still_reachable(self, project_uuid: str, name: str) -> bool:
        """Whether a signed-in user may still use the current project of their session: their
        own, or another user's while it is shared with them (an admin may unshare it)."""
        if self.account is None or self.admin:
            return True
        return session_projects.owner_of_name(name) == self.user or project_uuid in self.shared

    def unsaved(self) -> Project:
        """The current project as reads see it before it is stored: a new, empty project."""
        return session_projects.unsaved_project(
            self.user, self.project_uuid, self.runtime.settings.sampling
        )

    def may_see(self, project: Project) -> bool:
        """Whether this session reaches ``project`` by id (its user's, current or shared)."""
        if self.account is not None:
            owned = session_projects.owner_of(project) == self.user
            return self.admin or owned or project.uuid in self.shared
        user = self.session.get("user")
        current = self.session.get("project")
        return session_projects.may_see(
            project,
            None if user is None else str(user),
            None if current is None else str(current),
            self.shared,
        )

    def select(self, project: Project) -> None:
        """Make ``project`` the session's current project (shared when another user's;
        with users only a project the account may see: FORBIDDEN otherwise)."""
        if self.account is not None:
            if not self.may_see(project):
                raise DomainError(
                    "forbidden", "This project is not shared with you; an admin can share it"
                )
        elif session_projects.owner_of(project) != self.user:
            shared = dict(self.session.get("shared_projects") or {})
            shared[project.uuid] = {}
            self.session["shared_projects"] = shared
        self.session["project"] = project.uuid
        self._current = self.runtime.remember(project)
        self.runtime.prepare_dirs(project.name)


def session_project(request: Any) -> SessionProject | None:
    """The request's :class:`SessionProject` in multi-session mode (one per request)."""
    runtime = state_value(request.app.state, "multi_session")
    if runtime is None:
        return None
    found = getattr(request.state, "session_project", None)
    if found is None:
        principal = request.scope.get(SCOPE_KEY, OPEN)
        admin = principal.role >= Role.ADMIN
        found = SessionProject(runtime, request.session, principal.user_id, admin)
        request.state.session_project = found
    return found


async def request_settings(request: Any, *, create: bool = True) -> Settings | None:
    """The settings whose directories are the request's current project's (plain file
    routes: uploads, exports). Without ``create``, a session whose project is not stored yet
    gets None instead of a new project."""
    found = session_project(request)
    if found is None:
        return request.app.state.settings  # type: ignore[no-any-return]
    stored = await run_db(found.current if create else found.stored)
    if stored is None:
        return None
    return found.runtime.settings.for_project(stored[1])
