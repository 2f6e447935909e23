"""The S3-compatible file store (AWS, MinIO; moto in the tests), through boto3.

Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
profiles, instance roles); ``LABELGRAPH_FILE_STORE_ENDPOINT`` names a non-AWS endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from server.services.files.store import StoredFile

DELETE_BATCH = 1000  # S3's most keys in one DeleteObjects
MISSING_BOTO3 = "LABELGRAPH_FILE_STORE=s3://… needs boto3: pip install 'labelgraph[storage]'"


@dataclass
class S3FileStore:
    bucket: str
    prefix: str
    client: Any
    presign_ttl: int = 3600
    shared: bool = True

    @classmethod
    def from_spec(cls, spec: str, endpoint: str = "", presign_ttl: int = 3600) -> S3FileStore:
        parsed = urlparse(spec)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"file store must be empty or s3://bucket[/prefix], not {spec!r}")
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ValueError(MISSING_BOTO3) from None
        options: dict[str, Any] = {"retries": {"max_attempts": 3, "mode": "standard"}}
        if endpoint:
            options["s3"] = {"addressing_style": "path"}
        client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint or None, config=Config(**options)
        )
        return cls(parsed.netloc, parsed.path.strip("/"), client, presign_ttl)

    def key(self, project: str, area: str, name: str) -> str:
        return "/".join(part for part in (self.prefix, project, area, name) if part)

    def put(self, project: str, area: str, name: str, source: Path) -> None:
        self.client.upload_file(str(source), self.bucket, self.key(project, area, name))

    def stat(self, project: str, area: str, name: str) -> StoredFile | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(project, area, name))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredFile(int(head["ContentLength"]), head["LastModified"].timestamp())

    def url(self, project: str, area: str, name: str, download_name: str) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": self.key(project, area, name),
            "ResponseContentDisposition": f"attachment; filename={download_name}",
        }
        url: str = self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.presign_ttl
        )
        return url

    def fetch(self, project: str, area: str, name: str, target: Path) -> bool:
        if self.stat(project, area, name) is None:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        self.client.download_file(self.bucket, self.key(project, area, name), str(partial))
        partial.replace(target)
        return True

    def delete(self, project: str, area: str, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(project, area, name))

    def listing(
        self, project: str, area: str, prefix: str = ""
    ) -> Iterator[tuple[str, StoredFile]]:
        area_prefix = self.key(project, area, "") + "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=area_prefix + prefix
        )
        for page in pages:
            for item in page.get("Contents", ()):
                name = str(item["Key"])[len(area_prefix) :]
                yield name, StoredFile(int(item["Size"]), item["LastModified"].timestamp())

    def delete_many(self, project: str, area: str, names: list[str]) -> None:
        for start in range(0, len(names), DELETE_BATCH):
            keys = [
                {"Key": self.key(project, area, n)} for n in names[start : start + DELETE_BATCH]
            ]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
