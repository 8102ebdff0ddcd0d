"""Versioned batch models in XGBoost's native format, on a blob store every worker can read.

A version is two objects, ``<version>/model.ubj`` (XGBoost's UBJSON format, never pickle) and
``<version>/metadata.json`` (features, rows, metrics, creation time, the model file's SHA-256,
verified on every load, ...). The metadata is written last and removed first: a version
exists exactly while its metadata does, so a half-written or half-deleted model is never
visible. Where the objects live is the :class:`~models.blobs.BlobStore`'s business: a local
directory (one host) or S3 (every host).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from models.blobs import BlobNotFoundError, BlobStore, BlobStoreError

MODEL_FILE = "model.ubj"
METADATA_FILE = "metadata.json"


class ModelStoreError(RuntimeError):
    """A model version is missing, unreadable or fails its checksum, or the store is down."""


@dataclass(frozen=True)
class StoredModel:
    """The verified bytes and metadata of one model version."""

    version: str
    model_bytes: bytes
    metadata: dict[str, Any]


class ModelStore:
    """Immutable model versions on a blob store."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    @property
    def location(self) -> str:
        """Where the versions are (for messages)."""
        return self.blobs.location

    def save(self, model_bytes: bytes, metadata: dict[str, Any]) -> str:
        """Write a new version (model first, metadata last) and return its id."""
        digest = hashlib.sha256(model_bytes).hexdigest()
        created = datetime.now(UTC)
        version = f"{created:%Y%m%dT%H%M%S%f}Z-{digest[:8]}"
        full_metadata = {
            **metadata,
            "version": version,
            "created_at": created.isoformat(),
            "model_file": MODEL_FILE,
            "model_format": "xgboost-ubj",
            "sha256": digest,
        }
        try:
            self.blobs.put(f"{version}/{MODEL_FILE}", model_bytes)
            self.blobs.put(
                f"{version}/{METADATA_FILE}",
                orjson.dumps(full_metadata, option=orjson.OPT_INDENT_2),
            )
        except BlobStoreError as exc:
            raise ModelStoreError(f"model version {version} not saved: {exc}") from None
        return version

    def load(self, version: str) -> StoredModel:
        """Read a version and verify its checksum; :class:`ModelStoreError` if anything is off."""
        if not is_version_name(version):
            raise ModelStoreError(f"{str(version)[:80]!r} is not a model version name")
        try:
            raw_metadata = self.blobs.get(f"{version}/{METADATA_FILE}")
            model_bytes = self.blobs.get(f"{version}/{MODEL_FILE}")
        except BlobNotFoundError:
            raise ModelStoreError(
                f"model version {version!r} not found in {self.location}"
                " (every host must share the model store: a local directory is one host's)"
            ) from None
        except BlobStoreError as exc:
            raise ModelStoreError(f"model version {version} is unreadable: {exc}") from None
        try:
            metadata = orjson.loads(raw_metadata)
        except orjson.JSONDecodeError as exc:
            raise ModelStoreError(f"model version {version} is unreadable: {exc}") from None
        expected = metadata.get("sha256") if isinstance(metadata, dict) else None
        actual = hashlib.sha256(model_bytes).hexdigest()
        if expected != actual:
            raise ModelStoreError(
                f"model version {version} fails its checksum (metadata {expected}, file {actual})"
            )
        return StoredModel(version=version, model_bytes=model_bytes, metadata=metadata)

    def metadata(self, version: str) -> dict[str, Any]:
        """A version's metadata (checksum verified)."""
        return self.load(version).metadata

    def delete(self, version: str) -> None:
        """Remove a version (used by retention; never the active one): metadata first, so the
        version disappears at once."""
        if not is_version_name(version):
            return
        try:
            self.blobs.delete(f"{version}/{METADATA_FILE}")
            self.blobs.delete(f"{version}/{MODEL_FILE}")
        except BlobStoreError as exc:
            raise ModelStoreError(f"model version {version} not deleted: {exc}") from None

    def versions(self) -> list[str]:
        """All complete versions, oldest first."""
        try:
            names = self.blobs.names()
        except BlobStoreError as exc:
            raise ModelStoreError(f"model store unreadable: {exc}") from None
        suffix = f"/{METADATA_FILE}"
        return sorted(
            name.removesuffix(suffix)
            for name in names
            if name.endswith(suffix) and is_version_name(name.removesuffix(suffix))
        )


VERSION_PATTERN = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{8}")
"""Every version name: creation time (UTC, microseconds) and the model's SHA-256 prefix, e.g.
``20260101T120000123456Z-1a2b3c4d``. Names are checked against it wherever they are read (the
registry pointer in Redis, ``model-updates``, the CLI, the store's directory), so a name such as
``/abs/pathZ-1`` or ``../x`` can never point outside the store."""


def is_version_name(name: object) -> bool:
    """Whether ``name`` is a well-formed version name (see :data:`VERSION_PATTERN`).

    >>> is_version_name("20260101T120000123456Z-1a2b3c4d"), is_version_name("/abs/pathZ-1")
    (True, False)
    """
    return isinstance(name, str) and VERSION_PATTERN.fullmatch(name) is not None
