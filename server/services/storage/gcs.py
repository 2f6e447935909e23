"""The client of Google Cloud Storage storages (``gcs``, ``gcs-completions``), through the
official ``google-cloud-storage`` library (``pip install 'labelgraph[storage]'``).

Credentials, as Label Studio 0.9.1 (which used Application Default Credentials only) plus a
key per storage:

* ``google_application_credentials`` (a service-account key, JSON) authorizes the calls and
  signs the V4 URLs served for ``gs://`` task data; its ``token_uri`` is ignored (tokens always
  come from Google's), so a key cannot make the server post a signed token request elsewhere;
* without a key, the operator's Application Default Credentials (``GOOGLE_APPLICATION_
  CREDENTIALS`` …) authorize the calls; URLs are signed only with a service-account key;
* with an ``endpoint_url`` (an emulator, or another GCS-compatible service) the calls are
  anonymous and go there; a key, if given, only signs URLs, which then point there too.

Every call has the storage timeout and no retry (syncs retry later); an endpoint must be
public unless ``LABELGRAPH_STORAGE_ALLOW_PRIVATE`` (:mod:`server.services.storage.guard`).
"""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Callable, Iterator
from typing import Any

from server.services.net_guard import AddressRefused
from server.services.storage.backends import StorageFailure, StorageSpec
from server.services.storage.guard import check_endpoint, prepare_session
from server.settings import Settings

MISSING = "GCS storages need google-cloud-storage: pip install 'labelgraph[storage]'"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_ENDPOINT = "https://storage.googleapis.com"
NO_PROJECT = "labelgraph"  # the calls made name their bucket; no project lookup is needed


class GCSStore:
    scheme = "gs"

    def __init__(self, spec: StorageSpec, settings: Settings) -> None:
        try:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage
        except ImportError:  # pragma: no cover - the [storage] extra is installed in tests
            raise StorageFailure(MISSING) from None
        params = spec.params
        self.bucket = spec.path or ""
        self.prefix = spec.prefix
        self.endpoint = str(params.get("endpoint_url") or "").rstrip("/") or None
        guarded = not settings.storage_allow_private
        if guarded and self.endpoint:
            try:
                check_endpoint(self.endpoint)
            except AddressRefused as exc:
                raise StorageFailure(f"GCS endpoint not allowed: {exc}") from None
        self.timeout = settings.storage_timeout
        self.ttl = settings.s3_presign_ttl
        self.presign_enabled = params.get("presign", True) is not False
        self.signer = _service_account(params.get("google_application_credentials"))
        options: dict[str, Any] = {}
        project: str | None
        if self.endpoint:
            credentials: Any = AnonymousCredentials()  # type: ignore[no-untyped-call]
            http = prepare_session(_plain_session(), guarded=guarded)
            options["client_options"] = {"api_endpoint": self.endpoint}
            project = NO_PROJECT
        else:
            credentials, project = self._google_credentials()
            http = prepare_session(_authorized_session(credentials), guarded=guarded)
        try:
            self.client = storage.Client(
                project=project or NO_PROJECT, credentials=credentials, _http=http, **options
            )
        except Exception as exc:  # google-auth and api-core raise several kinds
            raise StorageFailure(f"GCS client: {_plain(exc)}") from None
        self._bucket = self.client.bucket(self.bucket)

    def _google_credentials(self) -> tuple[Any, str | None]:
        if self.signer is not None:
            return self.signer, self.signer.project_id
        import google.auth
        from google.auth.exceptions import GoogleAuthError

        try:
            credentials, project = google.auth.default(
                scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
            )
        except GoogleAuthError as exc:
            raise StorageFailure(
                f"GCS credentials: {exc} (give google_application_credentials)"
            ) from None
        return credentials, project

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except StorageFailure:
            raise
        except Exception as exc:  # google.api_core, google.auth and requests errors
            raise StorageFailure(f"GCS {what}: {_plain(exc)}") from None

    def check(self) -> None:
        self._call(
            f"bucket {self.bucket}",
            lambda: self.client.get_bucket(self.bucket, timeout=self.timeout, retry=None),
        )

    def list_keys(self) -> Iterator[str]:
        """Object names under the prefix, at every depth (Label Studio listed GCS
        recursively)."""
        prefix = self.prefix.rstrip("/") + "/" if self.prefix else None
        names = self._call(
            "listing",
            lambda: [
                blob.name
                for blob in self.client.list_blobs(
                    self.bucket, prefix=prefix, timeout=self.timeout, retry=None
                )
            ],
        )
        yield from names

    def read(self, key: str) -> bytes:
        blob = self._bucket.blob(key)
        return bytes(
            self._call(
                f"object {key}",
                lambda: blob.download_as_bytes(timeout=self.timeout, retry=None),
            )
        )

    def put(self, key: str, body: bytes) -> None:
        blob = self._bucket.blob(key)
        self._call(
            f"object {key}",
            lambda: blob.upload_from_string(
                body, content_type="application/json", timeout=self.timeout, retry=None
            ),
        )

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        blob = self._bucket.blob(key)
        self._call(f"object {key}", lambda: _deleted(blob, self.timeout, NotFound))

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{key}"

    def target_key(self, task_id: int) -> str:
        return f"{self.prefix.rstrip('/')}/{task_id}" if self.prefix else str(task_id)

    @property
    def can_presign(self) -> bool:
        return self.presign_enabled and self.signer is not None

    def presign(self, bucket: str, key: str) -> str:
        """A V4 signed GET URL, computed locally with the service-account key."""
        blob = self.client.bucket(bucket).blob(key)
        return str(
            blob.generate_signed_url(
                version="v4",
                expiration=datetime.timedelta(seconds=self.ttl),
                method="GET",
                credentials=self.signer,
                api_access_endpoint=self.endpoint or GOOGLE_ENDPOINT,
            )
        )


def _deleted(blob: Any, timeout: float, not_found: type[Exception]) -> None:
    with contextlib.suppress(not_found):  # already gone: what a delete wants
        blob.delete(timeout=timeout, retry=None)


def _service_account(key: Any) -> Any:
    """The service-account credentials of a key (JSON text), with Google's token URI."""
    if not key:
        return None
    from google.oauth2 import service_account

    try:
        info = json.loads(key) if isinstance(key, str) else dict(key)
        info["token_uri"] = GOOGLE_TOKEN_URI
        return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise StorageFailure(f"GCS google_application_credentials: {_plain(exc)}") from None


def _plain_session() -> Any:
    import requests

    return requests.Session()


def _authorized_session(credentials: Any) -> Any:
    from google.auth.transport.requests import AuthorizedSession

    return AuthorizedSession(credentials)  # type: ignore[no-untyped-call]


def _plain(exc: Exception) -> str:
    """An error's message on one line, without the private key a key error might quote."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if "PRIVATE KEY" not in text else "the private key cannot be read"
