"""Label Studio 0.9.1's HTTP Basic auth (rest-api.md §11): one shared credential.

Active only with a non-empty password; the user name defaults to ``ls``. Both parts must
match exactly; they are compared in constant time (``hmac.compare_digest`` on the bytes) so
the answer's timing reveals nothing about how much of a guess was right. A failure is
Label Studio's 401 with ``WWW-Authenticate: Basic realm="Login Required"`` and its text body.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from starlette.types import Send

REALM = b'Basic realm="Login Required"'
BODY = (
    b"Could not verify your access level for that URL.\nYou have to login with proper credentials"
)


@dataclass(frozen=True)
class BasicCredential:
    username: bytes
    password: bytes

    @classmethod
    def configured(cls, username: str, password: str) -> BasicCredential | None:
        """The shared credential of the settings; None when the password is empty (off)."""
        if not password:
            return None
        return cls((username or "ls").encode(), password.encode())

    def matches(self, authorization: bytes | None) -> bool:
        """Whether an ``Authorization`` header carries exactly this credential."""
        presented = decode_basic(authorization)
        if presented is None:
            return False
        username, password = presented
        # Both comparisons always run: no early exit on a wrong name.
        name_ok = hmac.compare_digest(username, self.username)
        password_ok = hmac.compare_digest(password, self.password)
        return name_ok and password_ok


def decode_basic(authorization: bytes | None) -> tuple[bytes, bytes] | None:
    """(user name, password) of a ``Basic`` Authorization header; None for anything else."""
    if authorization is None:
        return None
    scheme, _, encoded = authorization.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    username, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return username, password


async def send_basic_challenge(send: Send) -> None:
    """Label Studio's answer to a request without the credential."""
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"www-authenticate", REALM),
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
