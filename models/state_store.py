"""The learner-state port: what the processors need from wherever partition states are kept.

A state store keeps, per input partition, the applied offset, a fencing epoch and every model
key's encoded state. Adapters: :mod:`models.adapters.redis_state_store` (production) and
:mod:`models.adapters.memory_state_store` (the in-memory twin for fast tests); both pass the
same contract suite (``tests/contract``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

NO_OFFSET = -1


@dataclass
class PartitionSnapshot:
    """What a claim reads back: the new epoch, the applied offset and every key's state."""

    partition: int
    epoch: int
    applied_offset: int
    states: dict[str, bytes] = field(default_factory=dict)


@dataclass
class PartitionWrite:
    """What a checkpoint writes for one partition."""

    epoch: int
    applied_offset: int
    states: Mapping[str, bytes]


class StateStore(Protocol):
    """Claims and checkpoints the learner state of one input topic's partitions."""

    async def claim(self, partition: int) -> PartitionSnapshot:
        """Take ownership of a partition (bump its epoch, fencing earlier owners); read it."""
        ...

    async def checkpoint(self, writes: Mapping[int, PartitionWrite]) -> set[int]:
        """Write every partition whose epoch still matches, each one atomically (its states and
        offset together); return the others. When it raises, some partitions may have been
        written and others not: each is consistent on its own, and the caller retries all."""
        ...

    async def quarantine(self, partition: int, model_key: str, blob: bytes, reason: str) -> None:
        """Keep an undecodable key state aside, with the reason."""
        ...

    async def read(self, partition: int) -> PartitionSnapshot:
        """Read a partition without claiming it (status views)."""
        ...

    async def partitions(self) -> list[int]:
        """Partitions that have any stored state."""
        ...

    async def applied_offset(self, partition: int) -> int:
        """The last applied offset of a partition (``NO_OFFSET`` if none), without reading
        its key states (progress probes)."""
        ...
