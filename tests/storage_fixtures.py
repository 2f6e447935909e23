"""Real storages for the tests: an S3 server (moto's, as a process on 127.0.0.1) and Redis.

* ``s3_endpoint`` (session): ``python -m moto.server`` on a free port, stopped at the end.
  ``s3_bucket`` (per test): a new bucket and a boto3 client for it.
* ``redis_url`` (session): ``LABELGRAPH_TEST_REDIS_URL`` (CI starts a ``redis-server``); without
  it a local ``redis-server`` is started on a free port, and without one the Redis tests are
  skipped, except under CI (``CI=true``), where they fail. ``redis_store`` (per test): a key
  prefix of its own, whose keys are removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

S3_CREDENTIALS = {"aws_access_key_id": "test-key-id", "aws_secret_access_key": "test-secret-key"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _process(
    command: list[str], ready: Any, what: str, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd
    )
    try:
        deadline = time.monotonic() + 30
        while not ready():
            assert process.poll() is None, f"{what} exited during start-up"
            assert time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(url + "/moto-api/", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _process(command, ready, "the moto S3 server"):
        yield url


@dataclass
class Bucket:
    endpoint: str
    name: str
    client: Any

    def settings(self, **fields: Any) -> dict[str, Any]:
        """A storage-settings body for this bucket (credentials and endpoint included)."""
        return {"path": self.name, "endpoint_url": self.endpoint, **S3_CREDENTIALS, **fields}

    def put(self, key: str, body: bytes | str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def keys(self, prefix: str = "") -> list[str]:
        reply = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return sorted(item["Key"] for item in reply.get("Contents", ()))

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Bucket:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=S3_CREDENTIALS["aws_secret_access_key"],
        config=Config(s3={"addressing_style": "path"}),
    )
    name = "bucket-" + uuid.uuid4().hex[:12]
    client.create_bucket(Bucket=name)
    return Bucket(s3_endpoint, name, client)


def _redis_ready(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("LABELGRAPH_TEST_REDIS_URL", "")
    if configured:
        assert _redis_ready(configured), f"LABELGRAPH_TEST_REDIS_URL={configured} does not answer"
        yield configured
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI must provide Redis: LABELGRAPH_TEST_REDIS_URL is not set")
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("Redis tests need redis-server (apt-get install redis-server)")
    port = _free_port()
    directory = Path(tmp_path_factory.mktemp("redis"))
    url = f"redis://127.0.0.1:{port}/0"
    command = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
    ]
    with _process(command, lambda: _redis_ready(url), "redis-server"):
        yield url


@dataclass
class RedisPlace:
    host: str
    port: int
    prefix: str

    def client(self, db: int) -> Any:
        import redis

        return redis.Redis(host=self.host, port=self.port, db=db)

    def settings(self, **fields: Any) -> dict[str, Any]:
        return {"path": self.prefix, "host": self.host, "port": str(self.port), **fields}


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisPlace]:
    parsed = urlparse(redis_url)
    place = RedisPlace(parsed.hostname or "127.0.0.1", parsed.port or 6379, uuid.uuid4().hex)
    yield place
    for db in range(3):
        client = place.client(db)
        keys = list(client.scan_iter(match=place.prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()
