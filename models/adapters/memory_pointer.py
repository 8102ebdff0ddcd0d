"""An in-memory twin of the active-version pointer, for tests without Redis."""

from __future__ import annotations

from models.model_source import Versions


class MemoryPointer:
    """A settable active version; ``fail`` makes reads raise ``ConnectionError``.

    >>> import asyncio
    >>> pointer = MemoryPointer("v1")
    >>> asyncio.run(pointer.active())
    'v1'
    """

    def __init__(self, version: str | None = None, staged_version: str | None = None) -> None:
        self.version = version
        self.staged_version = staged_version
        self.fail = False

    async def active(self) -> str | None:
        """The active version, or None."""
        if self.fail:
            raise ConnectionError("pointer unreachable (test)")
        return self.version

    async def versions(self) -> Versions:
        """The active and the staged version."""
        return Versions(await self.active(), self.staged_version)
