"""Storage settings validation and masking, presigning, the worker's bookkeeping."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from server.errors import DomainError
from server.services.storage import config as storage_config
from server.services.storage.backends import S3Store, StorageSpec
from server.services.storage.config import clean
from server.services.storage.presign import DataResolver, has_blob_uri
from server.services.storage.runtime import BATCH_LIMIT, Work
from server.services.storage.storage_types import MASK, storage_type
from server.services.storage.target_sync import _task_id_of
from server.settings import Settings


def fields_of(exc: pytest.ExceptionInfo[DomainError]) -> Any:
    return exc.value.details["fields"]


def test_clean_s3_defaults_and_extras() -> None:
    result = clean(
        "source",
        "s3",
        {
            "path": "bucket",
            "regex": ".*",
            "aws_secret_access_key": "secret",
            "endpoint_url": "http://127.0.0.1:9000",
            "presign": "false",
            "unknown": "ignored",
        },
    )
    assert result.path == "bucket"
    assert result.params == {
        "regex": ".*",
        "use_blob_urls": True,
        "region": "us-east-1",
        "aws_secret_access_key": "secret",
        "endpoint_url": "http://127.0.0.1:9000",
        "presign": False,
    }


def test_clean_reports_every_field_error() -> None:
    with pytest.raises(DomainError) as exc:
        clean("target", "redis-completions", {"port": "70000", "db": "x", "host": ["h"]})
    assert fields_of(exc) == {
        "host": ["Not a valid string value"],
        "port": ["Not a valid integer value"],
        "db": ["Not a valid integer value"],
    }
    assert exc.value.code == "invalid"


def test_masked_secrets_keep_the_stored_value() -> None:
    current: Any = SimpleNamespace(type="redis", path=None, params={"password": "old", "db": 1})
    kept = clean("source", "redis", {"password": MASK}, current)
    assert kept.params["password"] == "old"
    replaced = clean("source", "redis", {"password": "new"}, current)
    assert replaced.params["password"] == "new"
    other: Any = SimpleNamespace(type="s3", path=None, params={"password": "x"})
    assert "password" not in clean("source", "redis", {"password": MASK}, other).params
    assert storage_config.masked({"password": "p", "aws_session_token": "", "db": 1}) == {
        "password": MASK,
        "aws_session_token": "",
        "db": 1,
    }


def test_unknown_types_name_the_supported_ones() -> None:
    with pytest.raises(DomainError) as exc:
        storage_type("source", "azure-blob-completions")
    assert exc.value.message.endswith("use one of: tasks-json, s3, gcs, azure-blob, redis")
    with pytest.raises(DomainError):
        storage_type("target", "s3")


def test_gcs_keys_are_checked_and_kept_as_json_text() -> None:
    key = {"type": "service_account", "client_email": "a@b", "private_key": "K"}
    result = clean("source", "gcs", {"path": "b", "google_application_credentials": key})
    assert json.loads(result.params["google_application_credentials"]) == key
    current: Any = SimpleNamespace(type="gcs", path="b", params=dict(result.params))
    kept = clean("source", "gcs", {"path": "b", "google_application_credentials": MASK}, current)
    assert (
        kept.params["google_application_credentials"]
        == result.params["google_application_credentials"]
    )
    with pytest.raises(DomainError) as exc:
        clean("source", "gcs", {"path": "other", "google_application_credentials": MASK}, current)
    assert fields_of(exc) == {
        "google_application_credentials": [
            "Enter the google_application_credentials again: a stored secret is not sent to a "
            "changed path"
        ]
    }
    assert storage_config.masked({"account_key": "k", "account_name": "a"}) == {
        "account_key": MASK,
        "account_name": "a",
    }


def test_settings_document_shows_current_values_masked() -> None:
    row: Any = SimpleNamespace(
        type="redis-completions",
        path="prefix",
        params={"host": "h", "port": "1", "password": "pw", "db": 2},
        syncing=False,
        sync_started_at=None,
        synced_at=None,
        last_error=None,
        error_at=None,
    )
    document = storage_config.settings_document({"target": row}, "/projects/p")
    form = document["target"]["redis-completions"]
    assert form["current"] is True and form["path"] == "prefix/"
    values = {f["name"]: f["data"] for f in form["fields"]}
    assert values == {"path": "prefix", "host": "h", "port": "1", "password": MASK, "db": 2}
    assert document["target"]["s3-completions"]["path"] == "prefix/"
    assert document["source"]["tasks-json"]["current"] is True


def test_presigning_is_local_and_replaces_uris_in_text() -> None:
    spec = StorageSpec(
        "s3",
        "bucket",
        {
            "aws_access_key_id": "k",
            "aws_secret_access_key": "s",
            "endpoint_url": "http://127.0.0.1:1",
        },
        "/p",
    )
    resolver = DataResolver(S3Store(spec, Settings(storage_allow_private=True)))
    data = {
        "image": "s3://bucket/a/b.jpg",
        "html": '<img src="s3://bucket/c.png"> and text',
        "n": 3,
        "plain": "no uri",
    }
    assert has_blob_uri(data) and not has_blob_uri({"x": "http://h/s3"})
    assert has_blob_uri({"n": 1, "u": "azure-blob://c/k", "v": "gs://b/k"})
    assert not has_blob_uri({"a": "s3:/b/k", "b": ["s3://in/a/list"], "c": None})
    assert not has_blob_uri(["s3://b/k"])
    served = resolver(data)
    assert served["image"].startswith("http://127.0.0.1:1/bucket/a/b.jpg?X-Amz-Algorithm=")
    assert served["html"].startswith('<img src="http://127.0.0.1:1/bucket/c.png?')
    assert served["html"].endswith('"> and text')
    assert served["n"] == 3 and served["plain"] == "no uri"
    assert data["image"] == "s3://bucket/a/b.jpg"  # the stored data is not changed


def test_only_the_storage_bucket_and_prefix_are_presigned() -> None:
    """The attack: task data naming another bucket (or another prefix of this one) would get
    a URL signed with the storage's credentials, which also shows its access key id and
    session token. Such URIs stay as they are."""
    spec = StorageSpec(
        "s3",
        "bucket",
        {
            "aws_access_key_id": "KEYID",
            "aws_secret_access_key": "s",
            "aws_session_token": "SESSIONTOKEN",
            "endpoint_url": "http://127.0.0.1:1",
            "prefix": "media",
        },
        "/p",
    )
    resolver = DataResolver(S3Store(spec, Settings(storage_allow_private=True)))
    data = {
        "own": "s3://bucket/media/a.jpg",
        "foreign": "s3://victim-bucket/media/a.jpg",
        "outside": "s3://bucket/private/a.jpg",
        "sneaky": "s3://bucket/media/../private/a.jpg",
        "text": "see s3://victim-bucket/x.png and s3://bucket/media/b.png",
    }
    served = resolver(data)
    assert "KEYID" in served["own"] and "SESSIONTOKEN" in served["own"]
    for key in ("foreign", "outside", "sneaky"):
        assert served[key] == data[key]
    assert served["text"].startswith("see s3://victim-bucket/x.png and http://127.0.0.1:1/")


def test_work_merges_and_falls_back_to_everything() -> None:
    work = Work(target_ids={1, 2})
    work.merge(Work(source=True, target_ids={3}))
    assert work.source and work.target_ids == {1, 2, 3} and not work.target_all
    work.merge(Work(target_ids=set(range(BATCH_LIMIT + 1))))
    assert work.target_all and work.target_ids == set()
    work.merge(Work(target_ids={5}))
    assert work.target_all and work.target_ids == set()


def test_task_ids_of_target_keys() -> None:
    assert _task_id_of("prefix/12") == 12
    assert _task_id_of("12.json") == 12
    assert _task_id_of("/projects/p/7") == 7
    assert _task_id_of("nothing") is None
