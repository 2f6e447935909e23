"""Projects of ``start-multi-session`` mode (rest-api.md §7.5): every browser session has a
user (a uuid4) and a current project; a user's projects are named ``<user uuid>/<project
uuid>`` and all live in the one database. Projects of other users are reached by their uuid
(then "shared" with the session). A uuid is the only secret, as in Label Studio; ids are not:
a session reaches by id only the projects it may see (:func:`may_see`).

A session's first project is stored by its first write: until then reads answer with an
unsaved row (:func:`unsaved_project`, id :data:`UNSAVED_ID`), so requests that only read
create nothing."""

from __future__ import annotations

import uuid as uuidlib

from server.db import write_transaction
from server.errors import DomainError, not_found
from server.models import Project
from server.services.projects import normalise_sampling

NOT_A_UUID = "Not a valid UUID"
# The id of a session's project that is not stored yet (stored ids start at 1).
UNSAVED_ID = 0


def check_uuid(value: str | None) -> str:
    """A canonical uuid string, or ``invalid`` "Not a valid UUID" (Label Studio's message)."""
    try:
        return str(uuidlib.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        raise DomainError("invalid", NOT_A_UUID, {"field": "uuid"}) from None


def project_name(user: str, project_uuid: str) -> str:
    return f"{user}/{project_uuid}"


def owner_of(project: Project) -> str | None:
    return owner_of_name(project.name)


def owner_of_name(name: str) -> str | None:
    """The session user a multi-session project's name (``<user>/<uuid>``) belongs to."""
    user, sep, _ = name.partition("/")
    return user if sep else None


def may_see(
    project: Project, user: str | None, current_uuid: str | None, shared: list[str]
) -> bool:
    """Whether a session reaches ``project``: its user's own projects, its current project
    and the projects it switched to by uuid."""
    if user is not None and owner_of(project) == user:
        return True
    return project.uuid == current_uuid or project.uuid in shared


def stored_project(project_uuid: str) -> Project | None:
    return Project.get_or_none(Project.uuid == project_uuid)


def unsaved_project(user: str, project_uuid: str, sampling: str = "sequential") -> Project:
    """The row a new session's project will have once stored (reads answer with it)."""
    return Project(
        id=UNSAVED_ID,
        uuid=project_uuid,
        name=project_name(user, project_uuid),
        sampling=normalise_sampling(sampling),
    )


def open_project(user: str, project_uuid: str, sampling: str = "sequential") -> Project:
    """The session's current project, created with default settings on first use (a new
    session's project, named after the session's user)."""
    project = Project.get_or_none(Project.uuid == project_uuid)
    if project is not None:
        return project
    with write_transaction():
        project = Project.get_or_none(Project.uuid == project_uuid)
        if project is None:
            project = Project.create(
                uuid=project_uuid,
                name=project_name(user, project_uuid),
                sampling=normalise_sampling(sampling),
            )
        return project


def create_project(user: str, description: str = "", sampling: str = "sequential") -> Project:
    """A new project of ``user`` (``POST /api/project?new=1&desc=…``)."""
    project_uuid = str(uuidlib.uuid4())
    with write_transaction():
        return Project.create(
            uuid=project_uuid,
            name=project_name(user, project_uuid),
            description=description,
            sampling=normalise_sampling(sampling),
        )


def find_project(project_uuid: str | None) -> Project:
    """The project a session switches to: any project, by uuid (404 when there is none)."""
    canonical = check_uuid(project_uuid)
    project = Project.get_or_none(Project.uuid == canonical)
    if project is None:
        raise not_found("Project", canonical)
    return project


def session_projects(user: str, shared: list[str]) -> list[Project]:
    """The user's own projects and the projects shared with the session, in id order."""
    own = Project.name.startswith(user + "/")
    query = Project.select().where(own | Project.uuid.in_(shared) if shared else own)
    return list(query.order_by(Project.id))
