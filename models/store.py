"""Versioned batch models on disk, in XGBoost's native format.

A version is a directory ``<store>/<version>/`` holding ``model.ubj`` (XGBoost's UBJSON format,
never pickle) and ``metadata.json`` (features, rows, metrics, creation time, the model file's
SHA-256, verified on every load, ...). Directories are written under a temporary name, fsynced
and renamed into place, so a half-written model is never visible.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

MODEL_FILE = "model.ubj"
METADATA_FILE = "metadata.json"


class ModelStoreError(RuntimeError):
    """A model version is missing, unreadable or fails its checksum."""


@dataclass(frozen=True)
class StoredModel:
    """The verified bytes and metadata of one model version."""

    version: str
    model_bytes: bytes
    metadata: dict[str, Any]


class ModelStore:
    """Directory of immutable model versions."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def save(self, model_bytes: bytes, metadata: dict[str, Any]) -> str:
        """Write a new version atomically and return its id."""
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
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{uuid.uuid4().hex[:8]}-", dir=self.root))
        try:
            _write_synced(staging / MODEL_FILE, model_bytes)
            _write_synced(
                staging / METADATA_FILE, orjson.dumps(full_metadata, option=orjson.OPT_INDENT_2)
            )
            _fsync_dir(staging)
            os.rename(staging, self.root / version)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return version

    def load(self, version: str) -> StoredModel:
        """Read a version and verify its checksum; :class:`ModelStoreError` if anything is off."""
        if not is_version_name(version):
            raise ModelStoreError(f"{str(version)[:80]!r} is not a model version name")
        directory = self.root / version
        if not directory.is_dir():
            raise ModelStoreError(f"model version {version!r} not found in {self.root}")
        try:
            metadata = orjson.loads((directory / METADATA_FILE).read_bytes())
            model_bytes = (directory / MODEL_FILE).read_bytes()
        except (OSError, orjson.JSONDecodeError) as exc:
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
        """Remove a version (used by retention; never the active one)."""
        directory = self.root / version
        if is_version_name(version) and directory.is_dir():
            trash = self.root / f".deleting-{version}-{uuid.uuid4().hex[:6]}"
            os.rename(directory, trash)  # atomic: the version disappears at once
            shutil.rmtree(trash, ignore_errors=True)

    def versions(self) -> list[str]:
        """All complete versions, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_version_name(p.name))


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


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
