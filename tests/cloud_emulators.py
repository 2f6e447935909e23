"""GCS and Azure storages for the tests: their emulators as real processes on 127.0.0.1.

* ``gcs_endpoint`` (session): ``python -m gcp_storage_emulator`` (PyPI, in the test extra) on
  a free port, in memory. ``gcs_bucket`` (per test): a new bucket, reached anonymously as the
  emulator wants, and a throwaway service-account key (a fresh RSA key, made once per session)
  that signs real V4 URLs.
* ``azurite_endpoint`` (session): Azurite's blob service (npm package ``azurite``) on a free
  port, in memory, with the well-known development account. Found as
  ``LABELGRAPH_TEST_AZURITE`` (the ``azurite-blob`` program), on ``PATH``, or under
  ``~/.cache/labelgraph-tests/azurite`` (``npm install --prefix ~/.cache/labelgraph-tests/azurite
  azurite``; ``.ci/run`` does that). ``azure_container`` (per test): a new container.

Without an emulator the tests that need it are skipped, except under CI (``CI=true``), where
they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.storage_fixtures import _free_port, _process

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented development key (public, the same in every Azurite).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_CACHE = Path.home() / ".cache" / "labelgraph-tests" / "azurite"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must provide {what}")
    pytest.skip(f"these tests need {what}")


# --- GCS ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    try:
        import gcp_storage_emulator  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        _missing("gcp-storage-emulator (pip install -e '.[test]')")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(url + "/", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    command = [sys.executable, "-m", "gcp_storage_emulator", "start"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--in-memory", "--quiet"]
    with _process(command, ready, "the GCS emulator"):
        yield url


@pytest.fixture(scope="session")
def gcs_service_account_key() -> str:
    """A service-account key of no real account: its RSA key is made here, so URLs signed
    with it are really signed (and checked by nobody but the tests)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "labelgraph-tests",
            "private_key_id": uuid.uuid4().hex,
            "private_key": pem,
            "client_email": "signer@labelgraph-tests.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "http://127.0.0.1:9/never-used",
        }
    )


@dataclass
class GcsBucket:
    endpoint: str
    name: str
    client: Any
    key: str  # the service-account key (JSON)

    scheme = "gs"
    source_type = "gcs"
    target_type = "gcs-completions"
    signature = "X-Goog-Signature="
    secret = "google_application_credentials"

    def settings(self, **fields: Any) -> dict[str, Any]:
        """A storage-settings body for this bucket (endpoint and key included)."""
        return {
            "path": self.name,
            "endpoint_url": self.endpoint,
            "google_application_credentials": self.key,
            **fields,
        }

    def put(self, key: str, body: bytes | str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.client.bucket(self.name).blob(key).upload_from_string(data)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(b.name for b in self.client.list_blobs(self.name, prefix=prefix or None))

    def read(self, key: str) -> bytes:
        return bytes(self.client.bucket(self.name).blob(key).download_as_bytes())

    def drop(self) -> None:
        """Remove the bucket and what it holds."""
        self.client.bucket(self.name).delete(force=True)


@pytest.fixture
def gcs_bucket(gcs_endpoint: str, gcs_service_account_key: str) -> GcsBucket:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="labelgraph-tests",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]  # google-auth: untyped
        client_options={"api_endpoint": gcs_endpoint},
    )
    name = "bucket-" + uuid.uuid4().hex[:12]
    client.create_bucket(name)
    return GcsBucket(gcs_endpoint, name, client, gcs_service_account_key)


# --- Azure -------------------------------------------------------------------------------


def azurite_program() -> str | None:
    configured = os.environ.get("LABELGRAPH_TEST_AZURITE", "")
    if configured:
        assert os.access(configured, os.X_OK), f"LABELGRAPH_TEST_AZURITE={configured} is no program"
        return configured
    found = shutil.which("azurite-blob")
    if found:
        return found
    cached = AZURITE_CACHE / "node_modules" / ".bin" / "azurite-blob"
    return str(cached) if os.access(cached, os.X_OK) else None


@pytest.fixture(scope="session")
def azurite_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    program = azurite_program()
    if program is None:
        _missing(f"Azurite (npm install --prefix {AZURITE_CACHE} azurite)")
    assert program is not None
    port = _free_port()
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            httpx.get(base + "/", timeout=1)
        except httpx.TransportError:
            return False
        return True  # any HTTP answer: the service listens

    command = [program, "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    command += ["--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--silent"]
    command += ["--disableTelemetry"]
    # Azurite writes a debug-log-free workspace file or two in its working directory.
    with _process(command, ready, "Azurite", cwd=tmp_path_factory.mktemp("azurite")):
        yield f"{base}/{AZURITE_ACCOUNT}"


@dataclass
class AzureContainer:
    endpoint: str
    name: str
    client: Any  # a ContainerClient

    scheme = "azure-blob"
    source_type = "azure-blob"
    target_type = "azure-blob-completions"
    signature = "sig="
    secret = "account_key"

    def settings(self, **fields: Any) -> dict[str, Any]:
        """A storage-settings body for this container (account, key and endpoint included)."""
        return {
            "path": self.name,
            "endpoint_url": self.endpoint,
            "account_name": AZURITE_ACCOUNT,
            "account_key": AZURITE_KEY,
            **fields,
        }

    def put(self, key: str, body: bytes | str) -> None:
        self.client.upload_blob(key, body, overwrite=True)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(self.client.list_blob_names(name_starts_with=prefix or None))

    def read(self, key: str) -> bytes:
        return bytes(self.client.download_blob(key).readall())

    def drop(self) -> None:
        self.client.delete_container()


@pytest.fixture
def azure_container(azurite_endpoint: str) -> AzureContainer:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient(
        azurite_endpoint, credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
    )
    name = "container-" + uuid.uuid4().hex[:12]
    client = service.create_container(name)
    return AzureContainer(azurite_endpoint, name, client)
