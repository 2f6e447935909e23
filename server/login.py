"""Signing in and out with a user name and password: shared by the GraphQL ``login``/``logout``
mutations and the login page's form posts.

Wrong passwords count against the client's address (:mod:`server.rate_limit`); once over the
limit, further attempts are refused (``TOO_MANY_ATTEMPTS``) without checking the password. The
answer never says whether the user name exists, and costs the same time either way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from server.auth_models import User
from server.auth_state import AuthState
from server.errors import DomainError
from server.services.auth import users

log = logging.getLogger(__name__)
MAX_FIELD = 1024


@dataclass(frozen=True)
class LoginCookie:
    user: User
    set_cookie: str  # the Set-Cookie header value


def login(auth: AuthState, client: str, username: str, password: str, secure: bool) -> LoginCookie:
    """Check the credentials (database work: call on a worker thread)."""
    wait = auth.limiter.retry_after(client)
    if wait:
        raise DomainError(
            "too_many_attempts",
            f"Too many failed sign-in attempts from this address; retry in {wait} seconds",
            {"retryAfter": wait},
        )
    user = None
    if len(username) <= MAX_FIELD and len(password) <= MAX_FIELD:
        user = users.authenticate(username, password)
    if user is None:
        auth.limiter.failed(client)
        log.warning("failed sign-in from %s", client)
        raise DomainError("invalid_credentials", "Wrong user name or password")
    assert auth.cookies is not None
    value = auth.cookies.make(user.id, user.auth_epoch)
    log.info("user %s signed in from %s", user.id, client)
    return LoginCookie(user, auth.cookies.set_header(value, secure))


def logout(auth: AuthState, user_id: int | None, secure: bool) -> str:
    """End every login of the user (database work); returns the Set-Cookie that clears it."""
    if user_id is not None:
        users.end_sessions(user_id)
    assert auth.cookies is not None
    return auth.cookies.clear_header(secure)
