"""API tokens: random, shown once, stored only as a SHA-256 hash.

A token is 32 random bytes (``secrets.token_urlsafe``): with 256 bits of entropy nobody can
guess one from its hash, so a fast hash is the right tool here, unlike for passwords (which
need argon2 because people choose them). A fast hash also lets every request find its token
with one indexed lookup instead of trying a slow hash against each row.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from server.auth_models import ApiToken, User
from server.db import write_transaction
from server.errors import DomainError

TOKEN_PREFIX = "lg_"
MAX_TOKEN_LENGTH = 200
MAX_EXPIRY_DAYS = 3650
LAST_USED_GRANULARITY = 3600  # seconds: ``last_used_at`` is written at most once an hour


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    row: ApiToken
    token: str  # the only time the token itself exists outside the client


def create_token(user_id: int, name: str = "", expires_days: int | None = None) -> NewToken:
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise DomainError("invalid", f"expires must be 1-{MAX_EXPIRY_DAYS} days")
    if len(name) > 150:
        raise DomainError("invalid", "A token name has at most 150 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = int(time.time())
    expires_at = now + expires_days * 86400 if expires_days is not None else None
    with write_transaction():
        row = ApiToken.create(
            user=user_id,
            name=name,
            token_hash=token_hash(token),
            prefix=token[: len(TOKEN_PREFIX) + 6],
            created_at=now,
            expires_at=expires_at,
        )
    return NewToken(row, token)


def list_tokens(user_id: int | None = None) -> list[ApiToken]:
    """Tokens (of one user, or all), oldest first; hashes are never shown by callers."""
    query = ApiToken.select(ApiToken, User).join(User)
    if user_id is not None:
        query = query.where(ApiToken.user == user_id)
    return list(query.order_by(ApiToken.id))


def revoke_token(token_id: int, user_id: int | None = None) -> None:
    """Delete a token (only one of ``user_id``'s when given): NOT_FOUND otherwise."""
    with write_transaction():
        query = ApiToken.delete().where(ApiToken.id == token_id)
        if user_id is not None:
            query = query.where(ApiToken.user == user_id)
        if query.execute() == 0:
            raise DomainError("not_found", f"Token {token_id} not found")


def user_for_token(token: str) -> User | None:
    """The user of a valid, unexpired token, else None: one indexed lookup."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = (
        ApiToken.select(ApiToken, User)
        .join(User)
        .where(ApiToken.token_hash == token_hash(token))
        .first()
    )
    now = int(time.time())
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.user.disabled_at is not None:
        return None
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_GRANULARITY:
        with write_transaction():
            ApiToken.update(last_used_at=now).where(ApiToken.id == row.id).execute()
    user: User = row.user
    return user
