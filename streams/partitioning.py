"""Which partition a record key lands on: Kafka's default partitioner, as every client uses it.

Workers, senders, the in-memory sender twin and tests all place keys with this one function,
so requests and outcomes of one key meet on the same worker.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from aiokafka.partitioner import DefaultPartitioner, murmur2


def partition_for(key: bytes | None, partitions: Sequence[int]) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as the Java client)."""
    if key is None:
        return _PARTITIONER(None, list(partitions), list(partitions))
    return partitions[_murmur_index(key, len(partitions))]


@functools.lru_cache(maxsize=65_536)
def _murmur_index(key: bytes, count: int) -> int:
    # Pure-Python murmur2 costs microseconds; model keys repeat, so it is cached.
    return (murmur2(key) & 0x7FFFFFFF) % count


_PARTITIONER = DefaultPartitioner()
