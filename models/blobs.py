"""The port under the model store: named, immutable byte objects.

Batch-model versions and the registry journal are written through a :class:`BlobStore`, so the
same model store runs on a local directory (the embedded default: one host) and on an S3
bucket that every host reads (adapters in :mod:`models.adapters.directory_blobs` and
:mod:`models.adapters.s3_blobs`, both run through ``tests/contract/test_blob_store.py``).
Names are ``/``-separated paths relative to the store's root.
"""

from __future__ import annotations

from typing import Protocol


class BlobStoreError(RuntimeError):
    """The store cannot be read or written (unreachable, access denied, disk error)."""


class BlobNotFoundError(BlobStoreError):
    """No object has that name."""


class BlobStore(Protocol):
    """Named byte objects; each write is atomic: a reader sees all of an object or none."""

    @property
    def location(self) -> str:
        """Where the objects are (a directory, ``s3://bucket/prefix``), for messages."""
        ...

    def put(self, name: str, data: bytes) -> None:
        """Write (or replace) the object ``name``, durably."""
        ...

    def create(self, name: str, data: bytes) -> bool:
        """Write ``name`` only if no object has that name; False (and nothing written) if one
        does. Two writers racing for one name: exactly one wins."""
        ...

    def get(self, name: str) -> bytes:
        """The object's bytes; :class:`BlobNotFoundError` if there is none."""
        ...

    def names(self, prefix: str = "") -> list[str]:
        """Names of every object starting with ``prefix``, sorted."""
        ...

    def delete(self, name: str) -> None:
        """Remove the object (no error if it is already gone)."""
        ...
