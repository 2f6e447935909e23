"""A server process's authentication state (``app.state.auth``).

**How a process learns that users exist.** Anonymous requests are refused once any user
exists, but asking the database on every request would put a query on every hot path. So the
answer is a flag: read at start-up; while it is false a daemon thread
(``labelgraph-auth-watch``) asks again every :data:`WATCH_INTERVAL` seconds (one indexed
``SELECT … LIMIT 1``, off the request path) and stops once users exist; in-process writes (a
GraphQL mutation creating a user) flip it at once with :meth:`AuthState.refresh`. Users are
never all removed by labelgraph, so once true the flag stays true for the process's life
(fail-safe). A user added with ``labelgraph user add`` while the server runs thus locks
anonymous callers out within :data:`WATCH_INTERVAL` seconds, in every worker process.
Requests carrying no credential on a server without users and without a Basic password make
no query at all.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from server import db
from server.basic_auth import BasicCredential
from server.login_cookie import LoginCookies
from server.multi_session import session_key
from server.rate_limit import FailureLimiter
from server.services.auth import users
from server.settings import Settings

log = logging.getLogger(__name__)
WATCH_INTERVAL = 2.0
WATCH_THREAD = "labelgraph-auth-watch"


class AuthState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Label Studio's Basic auth is never active in multi-session mode (rest-api.md §7.5).
        self.basic = (
            None
            if settings.multi_session
            else BasicCredential.configured(settings.username, settings.password)
        )
        self.limiter = FailureLimiter(settings.auth_rate_limit)
        self.proxy_headers = settings.proxy_headers
        self.cookies: LoginCookies | None = None
        self._users_exist = False
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def users_exist(self) -> bool:
        return self._users_exist

    def open(self) -> None:
        """At start-up (database connected): the signing key, the flag, the watcher."""
        home = Path(self.settings.root_dir or self.settings.project_dir)
        secret = self.settings.secret_key or session_key(home)
        self.cookies = LoginCookies(secret, self.settings.login_max_age)
        self.refresh()
        if not self._users_exist:
            self._watcher = threading.Thread(target=self._watch, name=WATCH_THREAD, daemon=True)
            self._watcher.start()

    def refresh(self) -> bool:
        """Ask the database now (call on a worker thread or before serving)."""
        if not self._users_exist and db.with_connection(users.any_user_exists):
            self._users_exist = True
            log.info("users exist: anonymous requests are refused from now on")
        return self._users_exist

    def _watch(self) -> None:
        while not self._users_exist and not self._stop.wait(WATCH_INTERVAL):
            try:
                self.refresh()
            except Exception:  # a database hiccup: try again next time
                log.warning("could not check whether users exist", exc_info=True)

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=WATCH_INTERVAL + 1)
