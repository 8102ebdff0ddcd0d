"""The blob store on a local directory: the embedded default (one host, or a shared mount).

Each object is a file; writes go to a hidden temporary file that is fsynced and renamed into
place (``create`` links it, which fails if the name exists), and the directory is fsynced, so
a crash leaves either the whole object or none. Hidden entries (``.tmp-*``, and the
``.staging-*`` / ``.deleting-*`` leftovers of older versions of the store) are never listed.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from models.blobs import BlobNotFoundError, BlobStoreError


class DirectoryBlobStore:
    """Objects as files under ``root``; names map to relative paths."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def location(self) -> str:
        """The directory."""
        return str(self.root)

    def put(self, name: str, data: bytes) -> None:
        """Write ``name`` atomically (temporary file, fsync, rename, fsync of the directory)."""
        path = self._path(name)
        temporary = self._write_temporary(path, data)
        try:
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise BlobStoreError(f"cannot write {path}: {exc}") from None
        _fsync_dir(path.parent)

    def create(self, name: str, data: bytes) -> bool:
        """Write ``name`` only if absent: the temporary file is hard-linked to the name, which
        the kernel refuses atomically when the name exists."""
        path = self._path(name)
        temporary = self._write_temporary(path, data)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        except OSError as exc:
            raise BlobStoreError(f"cannot write {path}: {exc}") from None
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return True

    def get(self, name: str) -> bytes:
        """The file's bytes."""
        path = self._path(name)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFoundError(f"{name} not found in {self.root}") from None
        except OSError as exc:
            raise BlobStoreError(f"cannot read {path}: {exc}") from None

    def names(self, prefix: str = "") -> list[str]:
        """Every visible file under the root whose relative path starts with ``prefix``."""
        if not self.root.is_dir():
            return []
        found = []
        for directory, subdirectories, files in os.walk(self.root):
            subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]
            relative = Path(directory).relative_to(self.root)
            for file in files:
                if file.startswith("."):
                    continue
                name = (relative / file).as_posix()
                if name.startswith(prefix):
                    found.append(name)
        return sorted(found)

    def delete(self, name: str) -> None:
        """Remove the file, then its directories up to the root if they are left empty."""
        path = self._path(name)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise BlobStoreError(f"cannot delete {path}: {exc}") from None
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:  # not empty (or gone): stop there
                break
            parent = parent.parent

    def _path(self, name: str) -> Path:
        parts = name.split("/")
        if not name or any(part in ("", ".", "..") or part.startswith(".") for part in parts):
            raise BlobStoreError(f"{name[:80]!r} is not a valid object name")
        return self.root.joinpath(*parts)

    def _write_temporary(self, path: Path, data: bytes) -> Path:
        temporary = path.parent / f".tmp-{uuid.uuid4().hex}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise BlobStoreError(f"cannot write {path}: {exc}") from None
        return temporary


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
