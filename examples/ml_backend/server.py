"""A small ML backend for labelgraph (and Label Studio 0.9), using only the standard library.

It answers the ML backend protocol: ``GET /health``, ``POST /setup``, ``POST /predict``,
``GET /is_training``, ``POST /train``, ``POST /job_status`` and ``POST /delete``. Its "model"
picks the first ``<Choice>`` of the first ``<Choices>`` control of the labeling config for every
task, with a fixed score; "training" counts the completions it gets and bumps the model version.
Replace :class:`FirstChoiceModel` with a real model to make it useful.

    python examples/ml_backend/server.py --port 9090
    labelgraph start my_project --init --ml-backends http://127.0.0.1:9090

Options meant for tests: ``--record FILE`` appends every request it receives to FILE as one JSON
line; ``--sleep SECONDS`` makes ``/predict`` wait before answering; ``--single`` answers only the
first task of a ``/predict`` call (like a backend written for one task at a time); ``--port 0``
picks a free port. The first line printed is always ``listening on http://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FirstChoiceModel:
    """Predicts the first choice of the first Choices control, always with the same score."""

    def __init__(self, score: float) -> None:
        self.score = score
        self.version = 1
        self.jobs = 0
        self.lock = threading.Lock()

    @property
    def model_version(self) -> str:
        return f"v{self.version}"

    def predict(self, tasks: list[dict[str, Any]], label_config: str) -> list[dict[str, Any]]:
        control = first_choices(label_config)
        results = []
        for _task in tasks:
            result = []
            if control is not None:
                from_name, to_name, choice = control
                result.append(
                    {
                        "from_name": from_name,
                        "to_name": to_name,
                        "type": "choices",
                        "value": {"choices": [choice]},
                    }
                )
            results.append({"result": result, "score": self.score})
        return results

    def train(self, completions: list[dict[str, Any]]) -> str:
        """Pretend to train: bump the model version; returns the job id."""
        with self.lock:
            self.version += 1
            self.jobs += 1
            return f"job-{self.jobs}"


def first_choices(label_config: str) -> tuple[str, str, str] | None:
    """(from_name, to_name, first choice value) of the first Choices control, if any."""
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError:
        return None
    for element in root.iter("Choices"):
        choice = element.find("Choice")
        if choice is not None and element.get("name") and element.get("toName"):
            value = choice.get("value") or choice.get("alias") or ""
            return element.get("name", ""), element.get("toName", ""), value
    return None


class Handler(BaseHTTPRequestHandler):
    server: BackendServer

    def do_GET(self) -> None:
        self.route("GET")

    def do_POST(self) -> None:
        self.route("POST")

    def route(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self.read_body()
        self.server.record(method, url.path, url.query, dict(self.headers), body)
        model = self.server.model
        request = body if isinstance(body, dict) else {}
        match method, url.path.rstrip("/") or "/":
            case "GET", "/health":
                self.reply(200, {"status": "UP", "model_dir": "/tmp/example-ml-backend"})
            case "POST", "/setup":
                self.reply(200, {"model_version": model.model_version})
            case "POST", "/predict":
                if self.server.sleep:
                    time.sleep(self.server.sleep)
                tasks = request.get("tasks") or []
                if self.server.single:
                    tasks = tasks[:1]
                results = model.predict(tasks, str(request.get("label_config", "")))
                self.reply(200, {"results": results, "model_version": model.model_version})
            case "GET", "/is_training":
                project = parse_qs(url.query).get("project", [""])[0]
                answer = {"is_training": False, "backend": "none", "project": project}
                self.reply(200, {**answer, "model_version": model.model_version})
            case "POST", "/train":
                completions = request.get("completions") or []
                if not completions:
                    self.reply(400, "No completions found.")
                else:
                    self.reply(201, {"job": model.train(completions)})
            case "POST", "/job_status":
                self.reply(200, {"job_status": "finished"})
            case "POST", "/delete":
                self.reply(200, {})
            case _:
                self.reply(404, {"status": 404, "detail": f"no route {method} {url.path}"})

    def read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class BackendServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], options: argparse.Namespace) -> None:
        super().__init__(address, Handler)
        self.model = FirstChoiceModel(options.score)
        self.sleep: float = options.sleep
        self.single: bool = options.single
        self.verbose: bool = options.verbose
        self.record_path: str | None = options.record
        self.record_lock = threading.Lock()

    def record(
        self, method: str, path: str, query: str, headers: dict[str, str], body: Any
    ) -> None:
        if not self.record_path:
            return
        lowered = {k.lower(): v for k, v in headers.items()}
        entry = {
            "time": time.time(),
            "method": method,
            "path": path,
            "query": query,
            "headers": {k: lowered[k] for k in ("user-agent", "content-type") if k in lowered},
            "body": body,
        }
        with self.record_lock, open(self.record_path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090, help="0 picks a free port")
    parser.add_argument("--score", type=float, default=0.5, help="score of every prediction")
    parser.add_argument("--record", help="append every request to this file (JSON lines)")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds /predict waits")
    parser.add_argument("--single", action="store_true", help="predict only the first task")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    options = parser.parse_args(argv)
    server = BackendServer((options.host, options.port), options)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
