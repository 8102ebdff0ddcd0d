"""Versioned batch models in their library's native format, on a blob store every worker can read.

A version is two objects, ``<version>/model.<ext>`` (the family's own format, never pickle:
XGBoost's UBJSON ``model.ubj`` by default, LightGBM's text ``model.txt``, CatBoost's
``model.cbm``, the logistic baseline's ``model.json``) and ``<version>/metadata.json``
(family, features, rows, metrics, creation time, the model file's name, format and SHA-256,
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
MODEL_FORMAT = "xgboost-ubj"
METADATA_FILE = "metadata.json"
#: What a version's model file may be called: ``model.`` and a short extension, so a name read
#: from metadata can never point outside its version.
MODEL_FILE_PATTERN = re.compile(r"model\.[a-z0-9]{1,8}")


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

    def save(
        self,
        model_bytes: bytes,
        metadata: dict[str, Any],
        model_file: str = MODEL_FILE,
        model_format: str = MODEL_FORMAT,
    ) -> str:
        """Write a new version (model first, metadata last) and return its id."""
        if not MODEL_FILE_PATTERN.fullmatch(model_file):
            raise ModelStoreError(f"{model_file!r} is not a model file name")
        digest = hashlib.sha256(model_bytes).hexdigest()
        created = datetime.now(UTC)
        version = f"{created:%Y%m%dT%H%M%S%f}Z-{digest[:8]}"
        full_metadata = {
            **metadata,
            "version": version,
            "created_at": created.isoformat(),
            "model_file": model_file,
            "model_format": model_format,
            "sha256": digest,
        }
        try:
            self.blobs.put(f"{version}/{model_file}", model_bytes)
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
            metadata = orjson.loads(raw_metadata)
            model_file = _model_file_of(version, metadata)
            model_bytes = self.blobs.get(f"{version}/{model_file}")
        except BlobNotFoundError:
            raise ModelStoreError(
                f"model version {version!r} not found in {self.location}"
                " (every host must share the model store: a local directory is one host's)"
            ) from None
        except (BlobStoreError, orjson.JSONDecodeError) as exc:
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
        version disappears at once, then every other object of the version (whatever its
        family named its model file; also a half-deleted version's leftovers)."""
        if not is_version_name(version):
            return
        try:
            self.blobs.delete(f"{version}/{METADATA_FILE}")
            for name in self.blobs.names(f"{version}/"):
                self.blobs.delete(name)
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


def _model_file_of(version: str, metadata: Any) -> str:
    """The model file a version's metadata names (``model.ubj`` for versions that predate
    families), checked against :data:`MODEL_FILE_PATTERN`."""
    name = metadata.get("model_file", MODEL_FILE) if isinstance(metadata, dict) else MODEL_FILE
    if not isinstance(name, str) or not MODEL_FILE_PATTERN.fullmatch(name):
        raise ModelStoreError(f"model version {version} names a bad model file {str(name)[:40]!r}")
    return name


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
