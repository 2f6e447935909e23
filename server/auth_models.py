"""Users and their API tokens (created by the users-and-tokens migration).

A user's ``password_hash`` is an argon2id hash (:mod:`server.services.auth.passwords`); a
token row holds only the SHA-256 of the token (:mod:`server.services.auth.tokens`).
``auth_epoch`` grows when a user signs out or is disabled: login cookies name the epoch they
were made in, so signing out ends every browser session of that user.
"""

from __future__ import annotations

import peewee

from server.models import BaseModel, IdField, Project, now_seconds


class User(BaseModel):
    id = IdField()
    username = peewee.CharField(max_length=150, unique=True)
    password_hash = peewee.TextField()
    role = peewee.CharField(max_length=16, default="annotator")  # admin, annotator
    auth_epoch = peewee.IntegerField(default=0)
    created_at = peewee.IntegerField(default=now_seconds)
    # Set when an admin disables the user: no sign-in, token or login cookie works any more,
    # while the user's completions keep naming them. Added by ``_disabled_users``.
    disabled_at = peewee.IntegerField(null=True)

    class Meta:
        table_name = "user"


class ApiToken(BaseModel):
    id = IdField()
    user = peewee.ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    user_id: int
    name = peewee.CharField(max_length=150, default="")
    token_hash = peewee.CharField(max_length=64, unique=True)
    # The first characters of the token, to tell tokens apart in listings (not secret enough
    # to matter: 6 of ~43 random characters).
    prefix = peewee.CharField(max_length=12)
    created_at = peewee.IntegerField(default=now_seconds)
    expires_at = peewee.IntegerField(null=True)
    last_used_at = peewee.IntegerField(null=True)

    class Meta:
        table_name = "api_token"


class ProjectShare(BaseModel):
    """Multi-session mode with users: another user's project an admin shared with a user."""

    id = IdField()
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=False)
    user_id: int
    created_at = peewee.IntegerField(default=now_seconds)

    class Meta:
        table_name = "project_share"
        indexes = ((("user", "project"), True),)


AUTH_MODELS: tuple[type[BaseModel], ...] = (User, ApiToken, ProjectShare)
