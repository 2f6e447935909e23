"""Which project a single-project server opens: its identity is stored in the database.

A database remembers the project its single-project server made (``database_home``). Starting
from a directory of another name (a copied or renamed project directory) no longer makes a new,
empty project beside the old data:

* a project named as asked (``--project-name``, else the directory's name) is opened;
* otherwise, when the database file lives in the project directory (the default SQLite file),
  the database's own project is opened whatever the directory is called now;
* otherwise (a database named by URL, e.g. one PostgreSQL shared by several servers) the start
  is refused with a message naming the database's project, unless a name was asked for
  explicitly, which opens or creates that project.

Several processes may start at once on one PostgreSQL: the lookup-or-create holds an advisory
lock, so exactly one of them creates the project.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.db import database, is_sqlite, write_transaction
from server.errors import DomainError
from server.models import DatabaseHome, Project
from server.services.projects import ensure_project

HOME_LOCK_ID = 0x1A8E2


@dataclass(frozen=True)
class OpenedProject:
    project: Project
    created: bool
    # The directory's name, when the project opened is called otherwise (a renamed directory).
    renamed_from: str | None = None


def open_home_project(
    directory_name: str,
    *,
    requested_name: str = "",
    database_in_directory: bool,
    sampling: str = "sequential",
) -> OpenedProject:
    """Find (or make) the project a single-project server serves; see the module doc."""
    name = requested_name or directory_name
    with write_transaction():
        if not is_sqlite():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (HOME_LOCK_ID,))
        home: DatabaseHome | None = DatabaseHome.get_or_none(DatabaseHome.id == 1)
        project: Project | None = Project.get_or_none(Project.name == name)
        if project is not None:
            if home is None:
                DatabaseHome.create(id=1, project=project.id)
            return OpenedProject(project, False)
        if home is not None and not requested_name:
            home_project: Project = Project.get_by_id(home.project_id)
            if database_in_directory:
                return OpenedProject(home_project, False, renamed_from=directory_name)
            raise DomainError(
                "conflict",
                f"this database belongs to project {home_project.name!r}, not {name!r}: start "
                f"from a directory named {home_project.name!r} or pass --project-name "
                f"{home_project.name} to open it (--project-name {name} makes a second "
                "project in this database)",
                {"project": home_project.name},
            )
        project, created = ensure_project(name, sampling=sampling)
        if home is None:
            DatabaseHome.create(id=1, project=project.id)
        return OpenedProject(project, created)
