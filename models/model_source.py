"""The active-version port: which batch model version every worker should score with now.

Read at the start of every scoring micro-batch, so it must be one cheap call. Adapters:
:mod:`models.adapters.redis_pointer` (the registry's pointer in Redis) and the in-memory twin
:class:`models.adapters.memory_pointer.MemoryPointer`; both pass ``tests/contract``.
"""

from __future__ import annotations

from typing import Protocol


class ActivePointer(Protocol):
    """Where the names of the active (and the staged) batch model version are read."""

    async def active(self) -> str | None:
        """The active version, or None when no version was ever activated.

        Raises ``OSError`` (``ConnectionError``/``TimeoutError``) or the adapter's own error
        when the pointer cannot be read; callers keep the model they hold.
        """
        ...

    async def staged(self) -> str | None:
        """The staged version (scored in the shadow by the learner, never served), or None;
        raises like :meth:`active`."""
        ...
