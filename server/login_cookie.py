"""The login cookie: a signed (itsdangerous, HMAC-SHA1 with a salt of its own), timestamped
``{"u": user id, "e": auth epoch}``; ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over HTTPS.

The signing key is ``LABELGRAPH_SECRET_KEY`` or the generated ``session.key`` of the project
(root) directory. Signing out raises the user's epoch, which voids all their cookies.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "labelgraph_login"
SALT = "labelgraph-login"


class LoginCookies:
    def __init__(self, secret: str, max_age: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.max_age = max_age

    def make(self, user_id: int, epoch: int) -> str:
        return self._serializer.dumps({"u": user_id, "e": epoch})

    def read(self, value: str) -> tuple[int, int] | None:
        """(user id, epoch) of a valid, unexpired cookie value; None otherwise."""
        if len(value) > 500:
            return None
        try:
            data: Any = self._serializer.loads(value, max_age=self.max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(data, dict):
            return None
        user_id, epoch = data.get("u"), data.get("e")
        if type(user_id) is not int or type(epoch) is not int:
            return None
        return user_id, epoch

    def set_header(self, value: str, secure: bool) -> str:
        return _cookie(value, self.max_age, secure)

    @staticmethod
    def clear_header(secure: bool) -> str:
        return _cookie("", 0, secure)


def _cookie(value: str, max_age: int, secure: bool) -> str:
    parts = [f"{COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
