"""Multi-session mode with users: projects an admin shared with a user."""

from __future__ import annotations

from server.auth_models import ProjectShare
from server.db import write_transaction
from server.models import Project
from server.services.auth.users import find_user
from server.services.session_projects import find_project


def shared_with(user_id: int) -> list[str]:
    """Uuids of the projects shared with the user."""
    query = (
        Project.select(Project.uuid)
        .join(ProjectShare, on=ProjectShare.project == Project.id)
        .where(ProjectShare.user == user_id)
        .order_by(Project.id)
    )
    return [row.uuid for row in query]


def unshare_project(project_uuid: str, username: str) -> Project:
    """Take back a share (idempotent): the user can no longer select or use the project."""
    project = find_project(project_uuid)
    user = find_user(username)
    with write_transaction():
        ProjectShare.delete().where(
            (ProjectShare.project == project.id) & (ProjectShare.user == user.id)
        ).execute()
    return project


def share_project(project_uuid: str, username: str) -> Project:
    """Let ``username`` select and use the project (idempotent)."""
    project = find_project(project_uuid)
    user = find_user(username)
    with write_transaction():
        exists = ProjectShare.select().where(
            (ProjectShare.project == project.id) & (ProjectShare.user == user.id)
        )
        if not exists.exists():
            ProjectShare.create(project=project.id, user=user.id)
    return project
