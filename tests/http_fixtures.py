"""A small threaded HTTP server on a loopback address, for URL-import tests.

It serves a directory and a few special paths: ``/redirect?to=<url>`` (302),
``/slow`` (waits before answering) and ``/big`` (a large body); it records the ``Host``
header of every request it receives.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HOSTS_SEEN: list[str] = []


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        HOSTS_SEEN.append(self.headers.get("Host", ""))
        parts = urlsplit(self.path)
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(parts.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts.path == "/slow":
            time.sleep(1.5)
        if parts.path == "/big":
            body = b"x" * 100_000
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()  # no Content-Length: the client must count
            self.wfile.write(body)
            self.close_connection = True
            return
        super().do_GET()


@contextlib.contextmanager
def serve_directory(root: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``root`` on ``host`` (a free port); yields the base URL."""
    handler = functools.partial(Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
