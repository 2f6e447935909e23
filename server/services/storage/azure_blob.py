"""The client of Azure Blob Storage storages (``azure-blob``, ``azure-blob-completions``),
through the official ``azure-storage-blob`` library (``pip install 'labelgraph[storage]'``).

The storage's ``path`` is the container. The account is the storage's ``account_name`` and
``account_key``, else the operator's ``LABELGRAPH_AZURE_BLOB_ACCOUNT_NAME`` and
``LABELGRAPH_AZURE_BLOB_ACCOUNT_KEY`` (Label Studio 0.9.1 read ``AZURE_BLOB_ACCOUNT_NAME`` and
``AZURE_BLOB_ACCOUNT_KEY`` only); the operator's key is used only at the account's own endpoint
``https://<account>.blob.core.windows.net``, never at an ``endpoint_url`` a client named
(Azurite and other services need the storage's own account and key). ``azure-blob://`` task
data is served as SAS URLs signed locally with the account key.

Every call has the storage timeout and at most one retry; an endpoint must be public unless
``LABELGRAPH_STORAGE_ALLOW_PRIVATE`` (:mod:`server.services.storage.guard`).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from server.services.net_guard import AddressRefused
from server.services.storage.backends import StorageFailure, StorageSpec
from server.services.storage.guard import check_endpoint, prepare_session
from server.settings import Settings

MISSING = "Azure storages need azure-storage-blob: pip install 'labelgraph[storage]'"
# Azure's rule for account names; it also keeps the default endpoint's host what it should be.
ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")


class AzureBlobStore:
    scheme = "azure-blob"

    def __init__(self, spec: StorageSpec, settings: Settings) -> None:
        try:
            import requests
            from azure.core.pipeline.transport import RequestsTransport
            from azure.storage.blob import BlobServiceClient
        except ImportError:  # pragma: no cover - the [storage] extra is installed in tests
            raise StorageFailure(MISSING) from None
        params = spec.params
        self.bucket = spec.path or ""
        self.prefix = spec.prefix
        endpoint = str(params.get("endpoint_url") or "").rstrip("/")
        self.account_name = str(params.get("account_name") or "")
        self.account_key = str(params.get("account_key") or "")
        if not self.account_key and not endpoint:  # the operator's account
            operator = settings.azure_blob_account_name
            if operator and self.account_name in ("", operator):
                self.account_name = operator
                self.account_key = settings.azure_blob_account_key
        if not self.account_name:
            raise StorageFailure(
                "Azure storages need account_name and account_key (or the operator's "
                "LABELGRAPH_AZURE_BLOB_ACCOUNT_NAME and LABELGRAPH_AZURE_BLOB_ACCOUNT_KEY)"
            )
        if not endpoint:
            if not ACCOUNT_NAME.fullmatch(self.account_name):
                raise StorageFailure(
                    f"Azure account name {self.account_name!r} is not valid (3-24 lowercase "
                    "letters and digits)"
                )
            endpoint = f"https://{self.account_name}.blob.core.windows.net"
        guarded = not settings.storage_allow_private
        if guarded:
            try:
                check_endpoint(endpoint)
            except AddressRefused as exc:
                raise StorageFailure(f"Azure endpoint not allowed: {exc}") from None
        self.endpoint = endpoint
        self.ttl = settings.s3_presign_ttl
        self.presign_enabled = params.get("presign", True) is not False
        credential: Any = None
        if self.account_key:
            credential = {"account_name": self.account_name, "account_key": self.account_key}
        transport = RequestsTransport(
            session=prepare_session(requests.Session(), guarded=guarded),
            session_owner=True,
            connection_timeout=settings.storage_timeout,
            read_timeout=settings.storage_timeout,
        )
        try:
            service = BlobServiceClient(
                endpoint, credential=credential, transport=transport, retry_total=1
            )
        except (ValueError, TypeError) as exc:
            raise StorageFailure(f"Azure client: {_plain(exc)}") from None
        self.container = service.get_container_client(self.bucket)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        from azure.core.exceptions import AzureError

        try:
            return fn()
        except AzureError as exc:
            raise StorageFailure(f"Azure {what}: {_plain(exc)}") from None

    def check(self) -> None:
        self._call(f"container {self.bucket}", self.container.get_container_properties)

    def list_keys(self) -> Iterator[str]:
        """Blob names under the prefix, at every depth (Label Studio listed Azure
        recursively)."""
        prefix = self.prefix.rstrip("/") + "/" if self.prefix else None
        names = self._call(
            "listing", lambda: list(self.container.list_blob_names(name_starts_with=prefix))
        )
        yield from names

    def read(self, key: str) -> bytes:
        return bytes(self._call(f"blob {key}", lambda: self.container.download_blob(key).readall()))

    def put(self, key: str, body: bytes) -> None:
        from azure.storage.blob import ContentSettings

        settings = ContentSettings(content_type="application/json")
        self._call(
            f"blob {key}",
            lambda: self.container.upload_blob(
                key, body, overwrite=True, content_settings=settings
            ),
        )

    def delete(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        def delete() -> None:
            try:
                self.container.delete_blob(key)
            except ResourceNotFoundError as exc:
                if getattr(exc, "error_code", None) != "BlobNotFound":
                    raise  # a missing container is a failure; a missing blob is done

        self._call(f"blob {key}", delete)

    def uri(self, key: str) -> str:
        return f"azure-blob://{self.bucket}/{key}"

    def target_key(self, task_id: int) -> str:
        return f"{self.prefix.rstrip('/')}/{task_id}" if self.prefix else str(task_id)

    @property
    def can_presign(self) -> bool:
        return self.presign_enabled and bool(self.account_key)

    def presign(self, bucket: str, key: str) -> str:
        """A read-only SAS URL for one blob, computed locally with the account key."""
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.ttl)
        token = generate_blob_sas(
            account_name=self.account_name,
            container_name=bucket,
            blob_name=key,
            account_key=self.account_key,
            permission=BlobSasPermissions(read=True),
            expiry=expiry,
        )
        return f"{self.endpoint}/{quote(bucket)}/{quote(key)}?{token}"


def _plain(exc: Exception) -> str:
    """An Azure error's first line (the rest repeats headers and the error body) and its
    error code."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines and lines[0].strip() else type(exc).__name__
    code = getattr(exc, "error_code", None)
    return f"{text} ({code})" if code else text
