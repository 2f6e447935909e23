"""The login page: ``GET /login`` (a server-rendered form, no external assets), ``POST /login``
(the form: sets the login cookie and redirects) and ``POST /logout``.

The forms need no CSRF header: :mod:`server.cors` refuses form posts from other origins.
``next`` may only name a path on this server (no open redirect).
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from server import login as login_service
from server.authentication import client_address, is_https
from server.db import run_db
from server.errors import DomainError
from server.principal import OPEN, SCOPE_KEY

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · labelgraph</title>
<style>
body {{ font: 16px system-ui, sans-serif; display: flex; justify-content: center;
  margin-top: 12vh; color: #222; background: #f6f6f6; }}
form {{ background: #fff; padding: 2em; border-radius: 8px; width: 18em;
  box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
label {{ display: block; margin-top: 1em; }}
input {{ width: 100%; box-sizing: border-box; padding: .5em; font: inherit; }}
button {{ margin-top: 1.5em; width: 100%; padding: .6em; font: inherit; }}
.error {{ color: #b00020; }}
</style></head>
<body><form method="post" action="/login">
<h1>labelgraph</h1>
{message}
<label>User name <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"
  required></label>
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>
</form></body></html>
"""
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}


def safe_next(raw: str | None) -> str:
    """A local path to go to after signing in ("/" for anything else)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    if any(ord(c) < 0x21 for c in raw) or len(raw) > 2000:
        return "/"
    return raw


def render(next_path: str, message: str = "", status: int = 200) -> HTMLResponse:
    shown = f'<p class="error">{html.escape(message)}</p>' if message else ""
    body = PAGE.format(message=shown, next=html.escape(next_path, quote=True))
    return HTMLResponse(body, status, headers=HEADERS)


async def login_page(request: Request) -> Response:
    if request.method == "GET":
        return render(safe_next(request.query_params.get("next")))
    auth = request.app.state.auth
    form = await request.form(max_files=0, max_fields=10)
    username, password = str(form.get("username") or ""), str(form.get("password") or "")
    next_path = safe_next(str(form.get("next") or "/"))
    secure = is_https(request.scope, auth.proxy_headers)
    client = client_address(request.scope, auth.proxy_headers)
    try:
        signed_in = await run_db(login_service.login, auth, client, username, password, secure)
    except DomainError as exc:
        status = 429 if exc.code == "too_many_attempts" else 401
        return render(next_path, exc.message, status)
    response = RedirectResponse(next_path, status_code=303, headers={"Cache-Control": "no-store"})
    response.headers.append("set-cookie", signed_in.set_cookie)
    return response


async def logout_post(request: Request) -> Response:
    auth = request.app.state.auth
    principal = request.scope.get(SCOPE_KEY, OPEN)
    secure = is_https(request.scope, auth.proxy_headers)
    user_id = principal.user_id if principal.via == "session" else None
    cookie = await run_db(login_service.logout, auth, user_id, secure)
    response = RedirectResponse("/login", status_code=303)
    response.headers.append("set-cookie", cookie)
    return response
