"""Users: create, look up, verify a password, end all sessions of one, disable and enable."""

from __future__ import annotations

import re

from server.auth_models import User
from server.db import write_transaction
from server.errors import DomainError
from server.models import now_seconds
from server.principal import Role
from server.services import events
from server.services.auth.passwords import check_password_rules, hash_password, verify_password

USERNAME = re.compile(r"[A-Za-z0-9_.@+-]{1,150}")


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise DomainError(
            "invalid",
            "A user name has 1-150 characters: letters, digits and _ . @ + -",
        )
    return username


def add_user(username: str, password: str, role: str = "annotator") -> User:
    """Create a user with an argon2id hash of ``password``."""
    check_username(username)
    try:
        parsed = Role.parse(role)
        check_password_rules(password)
    except ValueError as exc:
        raise DomainError("invalid", str(exc)) from None
    password_hash = hash_password(password)
    with write_transaction():
        if User.select().where(User.username == username).exists():
            raise DomainError("conflict", f"User {username} already exists")
        return User.create(username=username, password_hash=password_hash, role=parsed.name.lower())


def any_user_exists() -> bool:
    """One indexed probe: whether the server has users (then anonymous requests are refused)."""
    return User.select(User.id).limit(1).exists()


def get_user(user_id: int) -> User | None:
    """The user, while enabled (a disabled user's login cookies and tokens stop working)."""
    return User.get_or_none(User.id == user_id, User.disabled_at.is_null())


def find_user(username: str) -> User:
    found = User.get_or_none(User.username == username)
    if found is None:
        raise DomainError("not_found", f"User {username} not found")
    return found


def list_users() -> list[User]:
    return list(User.select().order_by(User.id))


def authenticate(username: str, password: str) -> User | None:
    """The user whose name and password these are, else None (same cost either way)."""
    user = User.get_or_none(User.username == username) if USERNAME.fullmatch(username) else None
    ok = verify_password(user.password_hash if user is not None else None, password)
    return user if ok and user is not None and user.disabled_at is None else None


def end_sessions(user_id: int) -> None:
    """Invalidate every login cookie of the user (sign out everywhere), and end the
    subscriptions opened with one, in every process."""
    with write_transaction():
        User.update(auth_epoch=User.auth_epoch + 1).where(User.id == user_id).execute()
        if events.bus.listening():
            events.add(events.Event(events.USERS_SIGNED_OUT, 0, (user_id,)))


def set_enabled(username: str, enabled: bool) -> User:
    """Enable or disable a user (idempotent). Disabling ends the user's login sessions and
    stops their tokens; their tokens, shares and completions are kept for when they are enabled
    again. The last enabled admin cannot be disabled: nobody could manage users any more."""
    with write_transaction():
        user = find_user(username)
        if not enabled and user.disabled_at is None and user.role == "admin":
            admins = User.select().where(User.role == "admin", User.disabled_at.is_null())
            if admins.count() <= 1:
                raise DomainError(
                    "conflict", f"{username} is the last enabled admin and cannot be disabled"
                )
        if enabled and user.disabled_at is not None:
            User.update(disabled_at=None).where(User.id == user.id).execute()
            user.disabled_at = None
        elif not enabled and user.disabled_at is None:
            now = now_seconds()
            User.update(disabled_at=now, auth_epoch=User.auth_epoch + 1).where(
                User.id == user.id
            ).execute()
            user.disabled_at = now
            if events.bus.listening():  # their open subscriptions, in every process
                events.add(events.Event(events.USERS_DISABLED, 0, (user.id,)))
    return user


def role_of(user: User) -> Role:
    return Role.ADMIN if user.role == "admin" else Role.ANNOTATOR
