"""Users, API tokens and signing in: ``me``, ``myTokens``, ``users``; ``createToken``,
``revokeToken``, ``createUser``, ``setUserEnabled``, ``shareProject``, ``unshareProject``,
``login``, ``logout``.

A token is shown once, in ``createToken``'s answer; only its SHA-256 hash is stored. Signed-in
users manage their own tokens; admins may also list users, create them and revoke any token.
"""

from __future__ import annotations

import datetime as dt

import strawberry

from schema.context import Info
from schema.permissions import IsAdmin, IsAnnotator, Public, inherits_access
from schema.scalars import from_seconds
from server import login as login_service
from server.auth_models import ApiToken as ApiTokenRow
from server.auth_models import User as UserRow
from server.auth_state import AuthState
from server.authentication import client_address, is_https
from server.errors import DomainError
from server.principal import Role
from server.services.auth import shares as share_service
from server.services.auth import tokens as token_service
from server.services.auth import users as user_service
from server.state_values import state_value


@inherits_access(Role.PUBLIC)  # `me` and `login` answer the caller's own user
@strawberry.type(description="A user of this server.")
class User:
    row: strawberry.Private[UserRow]

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def username(self) -> str:
        return self.row.username

    @strawberry.field(description="admin or annotator.")
    def role(self) -> str:
        return self.row.role

    @strawberry.field(
        description="False once an admin disabled the user: no sign-in, token or login "
        "cookie of theirs works until they are enabled again."
    )
    def enabled(self) -> bool:
        return self.row.disabled_at is None


@inherits_access(Role.ANNOTATOR)
@strawberry.type(
    name="ApiToken", description="An API token (never its value, which is shown once)."
)
class ApiTokenInfo:
    row: strawberry.Private[ApiTokenRow]

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="The token's first characters, to tell tokens apart.")
    def prefix(self) -> str:
        return self.row.prefix

    @strawberry.field
    def user_id(self) -> int:
        return self.row.user_id

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return from_seconds(self.row.created_at)  # type: ignore[return-value]

    @strawberry.field
    def expires_at(self) -> dt.datetime | None:
        return from_seconds(self.row.expires_at)

    @strawberry.field(description="Last use, to the hour.")
    def last_used_at(self) -> dt.datetime | None:
        return from_seconds(self.row.last_used_at)


@inherits_access(Role.ANNOTATOR)
@strawberry.type
class NewApiToken:
    api_token: ApiTokenInfo
    token: str = strawberry.field(
        description="The token: send it as `Authorization: Token <token>`. Shown only now."
    )


def _auth_state(info: Info) -> AuthState:
    request = info.context.request
    state = getattr(getattr(request, "app", None), "state", None)
    auth = state_value(state, "auth")
    if auth is None:
        raise DomainError("invalid", "Signing in needs an HTTP request")
    return auth  # type: ignore[no-any-return]


def _signed_in_user_id(info: Info) -> int:
    user_id = info.context.principal.user_id
    if user_id is None:
        raise DomainError(
            "invalid", "Only a signed-in user has tokens (the Basic credential has none)"
        )
    return user_id


@strawberry.type
class AuthQuery:
    @strawberry.field(
        permission_classes=[Public],
        description="The signed-in user; null for anonymous callers, the Basic credential and "
        "a server without users.",
    )
    def me(self, info: Info) -> User | None:
        user_id = info.context.principal.user_id
        row = user_service.get_user(user_id) if user_id is not None else None
        return User(row=row) if row is not None else None

    @strawberry.field(permission_classes=[IsAnnotator], description="Your API tokens.")
    def my_tokens(self, info: Info) -> list[ApiTokenInfo]:
        user_id = _signed_in_user_id(info)
        return [ApiTokenInfo(row=row) for row in token_service.list_tokens(user_id)]

    @strawberry.field(permission_classes=[IsAdmin], description="All users.")
    def users(self) -> list[User]:
        return [User(row=row) for row in user_service.list_users()]


@strawberry.type
class AuthMutation:
    @strawberry.mutation(
        permission_classes=[IsAnnotator],
        description="A new API token of yours, valid for `expiresDays` days (default: until "
        "revoked).",
    )
    def create_token(
        self, info: Info, name: str = "", expires_days: int | None = None
    ) -> NewApiToken:
        created = token_service.create_token(_signed_in_user_id(info), name, expires_days)
        return NewApiToken(api_token=ApiTokenInfo(row=created.row), token=created.token)

    @strawberry.mutation(
        permission_classes=[IsAnnotator],
        description="Revoke one of your tokens (admins: anyone's); returns its id.",
    )
    def revoke_token(self, info: Info, id: int) -> int:
        principal = info.context.principal
        owner = None if principal.role >= Role.ADMIN else _signed_in_user_id(info)
        token_service.revoke_token(id, owner)
        return id

    @strawberry.mutation(permission_classes=[IsAdmin], description="Create a user.")
    def create_user(
        self, info: Info, username: str, password: str, role: str = "annotator"
    ) -> User:
        row = user_service.add_user(username, password, role)
        auth = getattr(getattr(info.context.request, "app", None), "state", None)
        if auth is not None and hasattr(auth, "auth"):
            auth.auth.refresh()  # anonymous requests are refused from now on
        return User(row=row)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Multi-session mode with users: let a user select and use a project of "
        "another user (by its uuid); returns the project's uuid.",
    )
    def share_project(self, uuid: str, username: str) -> str:
        return share_service.share_project(uuid, username).uuid

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Multi-session mode with users: take back a share (idempotent); the user "
        "can no longer select or use the project, even as their session's current project. "
        "Returns the project's uuid.",
    )
    def unshare_project(self, uuid: str, username: str) -> str:
        return share_service.unshare_project(uuid, username).uuid

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Disable a user (enabled: false) or enable them again (idempotent). "
        "Disabling ends their login sessions and stops their tokens at once; their tokens, "
        "shares and completions are kept. The last enabled admin cannot be disabled "
        "(CONFLICT).",
    )
    def set_user_enabled(self, username: str, enabled: bool) -> User:
        return User(row=user_service.set_enabled(username, enabled))

    @strawberry.mutation(
        permission_classes=[Public],
        description="Sign in: sets the signed login cookie (HttpOnly, SameSite=Lax). With the "
        "cookie, multipart (upload) and other non-JSON POSTs need an `X-CSRF-Protection: 1` "
        "header.",
    )
    def login(self, info: Info, username: str, password: str) -> User:
        auth = _auth_state(info)
        scope = info.context.request.scope
        secure = is_https(scope, auth.proxy_headers)
        client = client_address(scope, auth.proxy_headers)
        signed_in = login_service.login(auth, client, username, password, secure)
        info.context.response.headers.append("set-cookie", signed_in.set_cookie)
        return User(row=signed_in.user)

    @strawberry.mutation(
        permission_classes=[Public],
        description="Sign out: clears the cookie and ends every login of the signed-in user.",
    )
    def logout(self, info: Info) -> bool:
        auth = _auth_state(info)
        principal = info.context.principal
        secure = is_https(info.context.request.scope, auth.proxy_headers)
        user_id = principal.user_id if principal.via == "session" else None
        cookie = login_service.logout(auth, user_id, secure)
        if info.context.response is not None:
            info.context.response.headers.append("set-cookie", cookie)
        return True
