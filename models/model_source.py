"""The active-version port: which batch model version every worker should score with now, and
which one is staged (scored in the learners' shadow, :mod:`models.shadow`).

Read at the start of every scoring and learning micro-batch, so it must be one cheap call:
:meth:`ActivePointer.versions` reads both names in one round trip. Adapters:
:mod:`models.adapters.redis_pointer` (the registry's pointer in Redis) and the in-memory twin
:class:`models.adapters.memory_pointer.MemoryPointer`; both pass ``tests/contract``.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class Versions(NamedTuple):
    """The active and the staged version (None: none)."""

    active: str | None
    staged: str | None


class ActivePointer(Protocol):
    """Where the names of the active (and the staged) batch model version are read."""

    async def active(self) -> str | None:
        """The active version, or None when no version was ever activated.

        Raises ``OSError`` (``ConnectionError``/``TimeoutError``) or the adapter's own error
        when the pointer cannot be read; callers keep the model they hold.
        """
        ...

    async def versions(self) -> Versions:
        """The active and the staged version in one read; raises like :meth:`active`."""
        ...
