"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile).

A password has little entropy, so its hash must be slow and memory-hard to make guessing
costly: that is argon2's job; nothing here is home-made.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
MIN_LENGTH = 8
MAX_LENGTH = 1024
# Verified against when a user name is unknown, so that answering "no such user" takes as long
# as a wrong password (user names cannot be probed by timing).
_DUMMY_HASH = _HASHER.hash("labelgraph-no-such-user")


def check_password_rules(password: str) -> None:
    """Raise ValueError when ``password`` is too short or too long."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"a password may have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; a missing hash (unknown user) costs the same time."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False
