"""A webhook receiver, run as its own process by tests: it verifies each request's signature,
answers 500 to the first ``--fail`` requests and 200 afterwards, and appends one JSON line per
request to ``--log`` (delivery id, action, whether the signature matched, status answered,
body). The signing secret is read from ``--secret-file`` at each request (it exists only once
the webhook is registered).

    python -m tests.webhook_receiver --port N --secret-file F --log L [--fail 2]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def verified(secret: str, body: bytes, header: str) -> bool:
    """How a receiver checks ``X-Labelgraph-Signature-256``."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--fail", type=int, default=0)
    options = parser.parse_args()
    seen = {"requests": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen["requests"] += 1
            status = 500 if seen["requests"] <= options.fail else 200
            secret = options.secret_file.read_text() if options.secret_file.exists() else ""
            signature = self.headers.get("X-Labelgraph-Signature-256", "")
            entry = {
                "delivery": self.headers.get("X-Labelgraph-Delivery"),
                "event": self.headers.get("X-Labelgraph-Event"),
                "custom": self.headers.get("X-Custom"),
                "signed": bool(secret) and verified(secret, body, signature),
                "status": status,
                "body": json.loads(body),
            }
            with options.log.open("a") as log:
                log.write(json.dumps(entry) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
