"""Who is calling: the ASGI layer that puts a :class:`~server.principal.Principal` into every
request's scope (``scope["labelgraph.principal"]``).

Credentials, first match wins:

* ``Authorization: Basic`` with Label Studio's shared credential (``--username/--password``):
  an admin;
* ``Authorization: Token <t>`` (Label Studio 1.x's header) or ``Bearer <t>``: the token's user;
* the signed login cookie: its user (then unsafe methods need a CSRF header, below).

Without one: with a Basic password set, Label Studio's 401 challenge (every path but
``/api/health`` and ``/static/``); with users, an anonymous principal that routes and fields
refuse (401 / ``UNAUTHENTICATED``); otherwise the open principal (everything allowed, as
before authentication existed). A wrong token or Basic credential is refused at once and
counted by the per-address failure limiter (429 once over ``--auth-rate-limit`` a minute).
Credentials are never logged.

**CSRF.** A browser sends the login cookie with any request to this server, also one a foreign
page triggers. A foreign page can send without a CORS preflight only "simple" requests: GET,
HEAD, and POST with a form, multipart or text/plain body (or none). So a cookie-authenticated
POST of that kind needs a non-empty ``X-CSRF-Protection`` (or ``apollo-require-preflight`` /
``x-apollo-operation-name``) header, as :mod:`server.graphql_csrf` does for GraphQL uploads:
a custom header forces the preflight, which :mod:`server.cors` refuses unless
``--cors-origins`` lists the origin. JSON POSTs, PUT, PATCH and DELETE always need that
preflight, and the cross-origin guard also refuses writes whose ``Origin`` is foreign. The
login and logout form posts are exempt (the cross-origin guard refuses foreign form posts).
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from server.auth_state import AuthState
from server.basic_auth import decode_basic, send_basic_challenge
from server.db import run_db
from server.graphql_csrf import PREFLIGHT_HEADERS, SIMPLE_CONTENT_TYPES
from server.http_refusal import send_refusal
from server.login_cookie import COOKIE
from server.principal import ANONYMOUS, OPEN, SCOPE_KEY, Principal, Role
from server.services.auth import tokens, users

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/api/health", "/api/health/"})
OPEN_PREFIXES = ("/static/",)
FORM_PATHS = frozenset({"/login", "/logout"})
CSRF_HEADERS = (b"x-csrf-protection", *PREFLIGHT_HEADERS)
TOKEN_SCHEMES = (b"token", b"bearer")


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def client_address(scope: Scope, proxy_headers: bool) -> str:
    """The caller's address; behind a trusted proxy the last X-Forwarded-For hop (the one
    the proxy itself saw: earlier entries are the client's own claims)."""
    if proxy_headers:
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded: str = value.decode("latin-1")
                hop = forwarded.rsplit(",", 1)[-1].strip()
                if hop:
                    return hop[:100]
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def is_https(scope: Scope, proxy_headers: bool) -> bool:
    if scope.get("scheme") in ("https", "wss"):
        return True
    if proxy_headers:
        for name, value in scope["headers"]:
            if name == b"x-forwarded-proto":
                proto: str = value.decode("latin-1")
                return proto.split(",")[0].strip().lower() == "https"
    return False


def read_cookie(scope: Scope, name: str) -> str | None:
    for header, value in scope["headers"]:
        if header != b"cookie":
            continue
        text: str = value.decode("latin-1")
        for part in text.split(";"):
            key, _, found = part.strip().partition("=")
            if key == name:
                return found.strip().strip('"')
    return None


class Refused(Exception):
    def __init__(self, status: int, code: str, detail: str, retry_after: int = 0) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


class Authentication:
    def __init__(self, app: ASGIApp, auth: AuthState) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._principal(scope)
        except Refused as refused:
            await self._refuse(scope, send, refused)
            return
        if principal is None:  # Label Studio's Basic auth wants its credential
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4401})
            else:
                await send_basic_challenge(send)
            return
        scope[SCOPE_KEY] = principal
        if (
            principal.via == "session"
            and scope["type"] == "http"
            and scope["path"] not in FORM_PATHS
            and is_forgeable(scope)
        ):
            detail = (
                "A form, multipart or text POST with a login cookie needs a non-empty "
                "X-CSRF-Protection header (cross-site request forgery protection)"
            )
            await send_refusal(scope, send, 403, "CSRF", detail)
            return
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal | None:
        """The request's principal; None when Label Studio's Basic challenge is the answer."""
        auth = self.auth
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                break
        if authorization is not None:
            scheme = authorization.strip().split(b" ", 1)[0].lower()
            if scheme in TOKEN_SCHEMES and auth.users_exist:
                # Without users there are no tokens: the header is ignored (no query), as
                # before authentication existed.
                return await self._token_principal(scope, authorization)
            if scheme == b"basic" and auth.basic is not None:
                self._check_rate(scope)
                if auth.basic.matches(authorization):
                    name = decode_basic(authorization)
                    shown = name[0].decode("utf-8", "replace") if name else ""
                    return Principal(Role.ADMIN, "basic", None, shown)
                self._failed(scope, "Basic credential")
                return None if not is_open_path(scope["path"]) else ANONYMOUS
        cookie = read_cookie(scope, COOKIE) if auth.users_exist and auth.cookies else None
        if cookie:
            found = await self._session_principal(cookie)
            if found is not None:
                return found
        if auth.basic is not None:
            return ANONYMOUS if is_open_path(scope["path"]) else None
        return ANONYMOUS if auth.users_exist else OPEN

    async def _token_principal(self, scope: Scope, authorization: bytes) -> Principal:
        self._check_rate(scope)
        token = authorization.strip().split(b" ", 1)[-1].strip().decode("latin-1")
        user = await run_db(tokens.user_for_token, token) if token else None
        if user is None:
            self._failed(scope, "API token")
            raise Refused(401, "UNAUTHENTICATED", "Invalid or expired token")
        return Principal(users.role_of(user), "token", user.id, user.username)

    async def _session_principal(self, cookie: str) -> Principal | None:
        assert self.auth.cookies is not None
        parsed = self.auth.cookies.read(cookie)
        if parsed is None:
            return None
        user_id, epoch = parsed
        user = await run_db(users.get_user, user_id)
        if user is None or user.auth_epoch != epoch:
            return None
        return Principal(users.role_of(user), "session", user.id, user.username)

    def _check_rate(self, scope: Scope) -> None:
        client = client_address(scope, self.auth.proxy_headers)
        wait = self.auth.limiter.retry_after(client)
        if wait:
            raise Refused(
                429,
                "TOO_MANY_ATTEMPTS",
                f"Too many failed sign-in attempts from this address; retry in {wait} seconds",
                wait,
            )

    def _failed(self, scope: Scope, what: str) -> None:
        client = client_address(scope, self.auth.proxy_headers)
        self.auth.limiter.failed(client)
        log.warning("refused a wrong %s from %s for %s", what, client, scope["path"])

    async def _refuse(self, scope: Scope, send: Send, refused: Refused) -> None:
        if scope["type"] == "websocket":
            code = 4401 if refused.status == 401 else 4429
            await send({"type": "websocket.close", "code": code})
            return
        headers = []
        if refused.retry_after:
            headers.append((b"retry-after", str(refused.retry_after).encode()))
        if refused.status == 401:
            headers.append((b"www-authenticate", b'Token realm="labelgraph"'))
        await send_refusal(
            scope, send, refused.status, refused.code, refused.detail, headers=headers
        )


def is_forgeable(scope: Scope) -> bool:
    """Whether a foreign page could have sent this request without a preflight: a POST with
    a simple content type (or none) and no preflight-forcing header."""
    if scope["method"] != "POST":
        return False  # GET/HEAD are safe; PUT, PATCH, DELETE always need a preflight
    kind = b""
    for name, value in scope["headers"]:
        if name in CSRF_HEADERS and value.strip():
            return False
        if name == b"content-type":
            kind = value.split(b";")[0].strip().lower()
    return kind == b"" or kind in SIMPLE_CONTENT_TYPES
