"""An in-memory twin of :class:`~models.adapters.redis_state_store.RedisStateStore` for fast tests.

Same contract (claims bump a fencing epoch; a checkpoint writes every still-owned partition at
once and reports the fenced ones), no Redis. ``fail`` makes the next calls raise
``ConnectionError``, to test what the processors do while their store is unreachable.
"""

from __future__ import annotations

from collections.abc import Mapping

from models.state_store import NO_OFFSET, PartitionSnapshot, PartitionWrite


class MemoryStateStore:
    """Partition hashes in a dict: ``{partition: {"epoch", "offset", "states"}}``.

    >>> import asyncio
    >>> store = MemoryStateStore()
    >>> asyncio.run(store.claim(0)).epoch
    1
    """

    def __init__(self) -> None:
        self.hashes: dict[int, dict] = {}
        self.quarantined: dict[tuple[int, str], tuple[bytes, str]] = {}
        self.fail = False

    def _check(self) -> None:
        if self.fail:
            raise ConnectionError("state store unreachable (test)")

    def _hash(self, partition: int) -> dict:
        return self.hashes.setdefault(partition, {"epoch": 0, "offset": NO_OFFSET, "states": {}})

    async def claim(self, partition: int) -> PartitionSnapshot:
        """Bump the epoch and read the partition (one atomic step, as in Redis)."""
        self._check()
        stored = self._hash(partition)
        stored["epoch"] += 1
        return PartitionSnapshot(
            partition, stored["epoch"], stored["offset"], dict(stored["states"])
        )

    async def checkpoint(self, writes: Mapping[int, PartitionWrite]) -> set[int]:
        """Write all partitions whose epoch still matches; return the others."""
        self._check()
        fenced = {p for p, w in writes.items() if self._hash(p)["epoch"] != w.epoch}
        for partition, write in writes.items():
            if partition not in fenced:
                stored = self._hash(partition)
                stored["offset"] = write.applied_offset
                stored["states"].update(write.states)
        return fenced

    async def quarantine(self, partition: int, model_key: str, blob: bytes, reason: str) -> None:
        """Set an undecodable state aside."""
        self._check()
        self.quarantined[(partition, model_key)] = (blob, reason)

    async def read(self, partition: int) -> PartitionSnapshot:
        """Read without claiming (an unknown partition reads as empty and stays unknown)."""
        self._check()
        stored = self.hashes.get(partition) or {"epoch": 0, "offset": NO_OFFSET, "states": {}}
        return PartitionSnapshot(
            partition, stored["epoch"], stored["offset"], dict(stored["states"])
        )

    async def partitions(self) -> list[int]:
        """Partitions with anything stored."""
        self._check()
        return sorted(self.hashes)

    async def applied_offset(self, partition: int) -> int:
        """The partition's applied offset."""
        self._check()
        return (self.hashes.get(partition) or {"offset": NO_OFFSET})["offset"]
