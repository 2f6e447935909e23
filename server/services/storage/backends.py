"""Clients of the storages themselves: S3 (boto3), Redis (redis-py) and a local directory;
GCS and Azure in :mod:`~server.services.storage.gcs` and
:mod:`~server.services.storage.azure_blob`.

Every call has a timeout (``LABELGRAPH_STORAGE_TIMEOUT``) and every failure becomes a
:class:`StorageFailure` whose message names the problem without credentials. boto3 and redis
are optional dependencies (``pip install 'labelgraph[storage]'``), imported when a storage of
their kind is used. Clients are cached per storage row version (:class:`ClientCache`): making
a boto3 client costs ~0.1 s, presigning a URL with one ~0.2 ms and no network call.

Hosts a client named must be public unless the operator allows otherwise
(:mod:`server.services.storage.guard`). Nothing here touches the database; callers never hold a
transaction while calling these.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import orjson

from server.services.net_guard import AddressRefused
from server.services.storage.config import redis_prefix
from server.services.storage.guard import check_endpoint, guard_boto3_client, vetted_address
from server.services.storage.storage_types import AZURE_TYPES, GCS_TYPES, S3_TYPES
from server.settings import Settings

if TYPE_CHECKING:
    from server.services.storage.azure_blob import AzureBlobStore
    from server.services.storage.gcs import GCSStore

MISSING_BOTO3 = "S3 storages need boto3: pip install 'labelgraph[storage]'"
MISSING_REDIS = "Redis storages need redis-py: pip install 'labelgraph[storage]'"


class StorageFailure(Exception):
    """A storage could not be reached or refused an operation."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class StorageSpec:
    """What a client needs: type, path and params of a storage row (credentials included)."""

    type: str
    path: str | None
    params: dict[str, Any]
    project_dir: str
    version: tuple[Any, ...] = ()  # (row id, updated_at): the client cache key

    @property
    def prefix(self) -> str:
        return str(self.params.get("prefix") or "")


# --- S3 ------------------------------------------------------------------------------------


class S3Store:
    scheme = "s3"

    def __init__(self, spec: StorageSpec, settings: Settings) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:  # pragma: no cover - the [storage] extra is installed in tests
            raise StorageFailure(MISSING_BOTO3) from None
        params = spec.params
        self.bucket = spec.path or ""
        self.prefix = spec.prefix
        endpoint = params.get("endpoint_url") or settings.s3_endpoint or None
        # The operator's endpoint is trusted; one a client named (or AWS) must be public.
        guarded = not settings.storage_allow_private and endpoint != (settings.s3_endpoint or None)
        if guarded and endpoint:
            try:
                check_endpoint(endpoint)
            except AddressRefused as exc:
                raise StorageFailure(f"S3 endpoint not allowed: {exc}") from None
        options: dict[str, Any] = {
            "signature_version": "s3v4",
            "connect_timeout": settings.storage_timeout,
            "read_timeout": settings.storage_timeout,
            "retries": {"max_attempts": 2, "mode": "standard"},
        }
        if endpoint:
            options["s3"] = {"addressing_style": "path"}
        session = boto3.session.Session(
            aws_access_key_id=params.get("aws_access_key_id") or None,
            aws_secret_access_key=params.get("aws_secret_access_key") or None,
            aws_session_token=params.get("aws_session_token") or None,
        )
        self.client = session.client(
            "s3",
            region_name=params.get("region") or "us-east-1",
            endpoint_url=endpoint,
            config=Config(**options),
        )
        if guarded:
            try:
                guard_boto3_client(self.client)
            except AddressRefused as exc:
                raise StorageFailure(str(exc)) from None
        self.presign_enabled = params.get("presign", True) is not False
        self.ttl = settings.s3_presign_ttl

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise StorageFailure(f"S3 {what}: {exc}") from None

    def check(self) -> None:
        self._call(f"bucket {self.bucket}", self.client.head_bucket, Bucket=self.bucket)

    def list_keys(self) -> Iterator[str]:
        """Object keys under the prefix: one level when a prefix is given (Label Studio)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.prefix:
            kwargs.update(Prefix=self.prefix.rstrip("/") + "/", Delimiter="/")
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call("listing", lambda: list(paginator.paginate(**kwargs)))
        for page in pages:
            for item in page.get("Contents", ()):
                yield item["Key"]

    def read(self, key: str) -> bytes:
        reply = self._call(f"object {key}", self.client.get_object, Bucket=self.bucket, Key=key)
        return bytes(self._call(f"object {key}", reply["Body"].read))

    def put(self, key: str, body: bytes) -> None:
        self._call(
            f"object {key}",
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
        )

    def delete(self, key: str) -> None:
        self._call(f"object {key}", self.client.delete_object, Bucket=self.bucket, Key=key)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def target_key(self, task_id: int) -> str:
        return f"{self.prefix.rstrip('/')}/{task_id}" if self.prefix else str(task_id)

    @property
    def can_presign(self) -> bool:
        return self.presign_enabled

    def presign(self, bucket: str, key: str) -> str:
        """A presigned GET URL: local computation, no network call."""
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self.ttl
            )
        )


# The object stores (bucket/container, prefix, blob URLs, presigning) and every client.
CloudStore: TypeAlias = "S3Store | GCSStore | AzureBlobStore"
Store: TypeAlias = "S3Store | GCSStore | AzureBlobStore | RedisStore"


# --- Redis ---------------------------------------------------------------------------------


class RedisStore:
    def __init__(self, spec: StorageSpec, settings: Settings) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:  # pragma: no cover
            raise StorageFailure(MISSING_REDIS) from None
        params = spec.params
        self.host = params.get("host") or "localhost"
        self.port = int(params.get("port") or 6379)
        db = params.get("db")
        self.db = int(db) if db is not None else 1
        self.path = redis_prefix(spec.path, spec.project_dir)
        self._errors = (redis.RedisError, OSError)
        address = self.host
        if not settings.storage_allow_private:
            try:  # resolved once; the client connects to the vetted address itself
                address = vetted_address(self.host, self.port)
            except AddressRefused as exc:
                raise StorageFailure(f"Redis host not allowed: {exc}") from None
        self.client = redis.Redis(
            host=address,
            port=self.port,
            db=self.db,
            password=params.get("password") or None,
            socket_timeout=settings.storage_timeout,
            socket_connect_timeout=settings.storage_timeout,
            retry=Retry(NoBackoff(), 0),  # one try per call: callers retry later
        )

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self._errors as exc:
            raise StorageFailure(f"Redis {self.host}:{self.port}/{self.db} {what}: {exc}") from None

    def check(self) -> None:
        self._call("ping", self.client.ping)

    def list_keys(self) -> Iterator[str]:
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.path) + "/*"
        keys = self._call("listing", lambda: list(self.client.scan_iter(match=pattern, count=1000)))
        for key in sorted(keys, key=_natural):
            yield key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)

    def read(self, key: str) -> bytes:
        value = self._call(f"key {key}", self.client.get, key)
        if value is None:
            raise StorageFailure(f"Redis key {key} is gone")
        return bytes(value)

    def put(self, key: str, body: bytes) -> None:
        self._call(f"key {key}", self.client.set, key, body)

    def delete(self, key: str) -> None:
        self._call(f"key {key}", self.client.delete, key)

    def uri(self, key: str) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}/{key}"

    def target_key(self, task_id: int) -> str:
        return f"{self.path}/{task_id}"

    def close(self) -> None:
        self.client.close()


def _natural(key: bytes | str) -> tuple[Any, ...]:
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


# --- local directory -----------------------------------------------------------------------


class LocalDir:
    """The project's ``completions/`` directory: ``<task id>.json`` files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, key: str, body: bytes) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = self.directory / f".{key}.{threading.get_ident()}.part"
            partial.write_bytes(body)
            os.replace(partial, self.directory / key)
        except OSError as exc:
            raise StorageFailure(f"completions directory: {exc.strerror or exc}") from None

    def delete(self, key: str) -> None:
        try:
            (self.directory / key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageFailure(f"completions directory: {exc.strerror or exc}") from None

    def uri(self, key: str) -> str:
        return f"completions/{key}"

    @staticmethod
    def target_key(task_id: int) -> str:
        return f"{task_id}.json"


def completions_dir(project_dir: str) -> Path:
    return Path(project_dir) / "completions"


# --- cache ---------------------------------------------------------------------------------


class ClientCache:
    """Clients by storage row version, shared by the threads of a process."""

    def __init__(self, size: int = 64) -> None:
        self._items: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self._size = size

    def get(self, spec: StorageSpec, settings: Settings) -> Store:
        key = (spec.type, spec.version, spec.project_dir)
        with self._lock:
            found = self._items.get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        store = open_store(spec, settings)
        with self._lock:
            if len(self._items) >= self._size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = store
        return store

    def close(self) -> None:
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for store in items:
            if isinstance(store, RedisStore):
                store.close()


def open_store(spec: StorageSpec, settings: Settings) -> Store:
    if spec.type in S3_TYPES:
        return S3Store(spec, settings)
    if spec.type in GCS_TYPES:
        from server.services.storage.gcs import GCSStore

        return GCSStore(spec, settings)
    if spec.type in AZURE_TYPES:
        from server.services.storage.azure_blob import AzureBlobStore

        return AzureBlobStore(spec, settings)
    return RedisStore(spec, settings)


def client_for(spec: StorageSpec, settings: Settings, cache: ClientCache | None) -> Store:
    return cache.get(spec, settings) if cache is not None else open_store(spec, settings)


def json_document(value: Any) -> bytes:
    """A completions document as stored: compact JSON, keys sorted (export-formats.md §1.1)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):  # integers beyond 64 bits
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return text.encode()
