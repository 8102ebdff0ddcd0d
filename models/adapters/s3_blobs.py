"""The blob store on S3 (or any S3-compatible store: MinIO, Ceph, R2, ...), through boto3.

Every host of a deployment reads the same bucket, so a version trained and promoted on one
host loads on all of them, and the registry journal outlives any host. A PUT is atomic (a
reader sees the old object, the new one, or none); ``create`` is a conditional PUT
(``If-None-Match: *``), refused by the store when the name exists. Credentials come from
boto3's usual chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, a profile, an
instance role); timeouts are short so an outage is an error, not a hang.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from models.blobs import BlobNotFoundError, BlobStoreError

#: Error codes S3 answers a conditional PUT with when the object exists (or one is being
#: written concurrently).
_EXISTS = {"PreconditionFailed", "ConditionalRequestConflict"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")`` (prefix may be empty).

    >>> parse_s3_url("s3://models/prod"), parse_s3_url("s3://models")
    (('models', 'prod/'), ('models', ''))
    """
    if not url.startswith("s3://"):
        raise ValueError(f"{url!r} is not an s3:// URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"{url!r} names no bucket")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class S3BlobStore:
    """Objects under ``prefix`` in ``bucket``."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def from_url(
        cls,
        url: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        timeout_s: float = 10.0,
    ) -> S3BlobStore:
        """The store at ``s3://bucket/prefix``; ``endpoint_url`` for a non-AWS store."""
        bucket, prefix = parse_s3_url(url)
        config = Config(
            connect_timeout=min(timeout_s, 3.0),
            read_timeout=timeout_s,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )
        return cls(client, bucket, prefix)

    @property
    def location(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}"

    def put(self, name: str, data: bytes) -> None:
        """One PUT (atomic by S3's rules)."""
        with self._translated(name, "write"):
            self._client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)

    def create(self, name: str, data: bytes) -> bool:
        """A conditional PUT that S3 refuses when the name exists."""
        try:
            with self._translated(name, "write"):
                self._client.put_object(
                    Bucket=self.bucket, Key=self._key(name), Body=data, IfNoneMatch="*"
                )
        except BlobExistsError:
            return False
        return True

    def get(self, name: str) -> bytes:
        """One GET."""
        with self._translated(name, "read"):
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(name))
            return response["Body"].read()

    def names(self, prefix: str = "") -> list[str]:
        """Every key under the store's prefix + ``prefix`` (all pages), relative to the store."""
        found = []
        with self._translated(prefix or "(all)", "list"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                found += [item["Key"][len(self.prefix) :] for item in page.get("Contents", ())]
        return sorted(found)

    def delete(self, name: str) -> None:
        """One DELETE (S3 answers success for a missing key too)."""
        with self._translated(name, "delete"):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def _key(self, name: str) -> str:
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise BlobStoreError(f"{name[:80]!r} is not a valid object name")
        return self.prefix + name

    @contextmanager
    def _translated(self, name: str, action: str) -> Iterator[None]:
        """botocore's errors as the port's: a missing object -> BlobNotFoundError, an existing
        one under a conditional PUT -> BlobExistsError, anything else -> BlobStoreError."""
        what = f"cannot {action} {name} in {self.location}"
        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _EXISTS:
                raise BlobExistsError(f"{what}: it exists") from None
            if code in _MISSING:
                raise BlobNotFoundError(f"{what}: not found") from None
            raise BlobStoreError(f"{what}: {code or exc}") from None
        except BotoCoreError as exc:
            raise BlobStoreError(f"{what}: {exc}") from None


class BlobExistsError(BlobStoreError):
    """A create-only write found the name taken (internal: :meth:`S3BlobStore.create` turns it
    into ``False``)."""
