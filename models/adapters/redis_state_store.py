"""Online-learner state in Redis: per input partition, the applied offset and every key's state.

One Redis hash per partition holds ``__offset__`` (last applied input offset), ``__epoch__``
(fencing token) and ``k:<model key>`` (encoded :class:`~models.keyed.KeyModel`). A worker that
takes a partition *claims* it: it bumps the epoch and reads the hash in one MULTI/EXEC. A
checkpoint writes states and offsets of several partitions in one MULTI/EXEC, guarded by WATCH
on those hashes and a check that each epoch is still the one the writer claimed; a worker that
lost a partition (a zombie after a rebalance) is refused instead of overwriting the new owner.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from models.adapters.redis_errors import as_connection_errors
from models.adapters.redis_keys import RedisKeys
from models.state_store import NO_OFFSET, PartitionSnapshot, PartitionWrite

OFFSET_FIELD = "__offset__"
EPOCH_FIELD = "__epoch__"
KEY_PREFIX = "k:"


class RedisStateStore:
    """The :class:`~models.state_store.StateStore` port on Redis (errors: ``ConnectionError``)."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, topic: str) -> None:
        self._client = client
        self._keys = keys
        self._topic = topic

    def _key(self, partition: int) -> str:
        return self._keys.partition_state(self._topic, partition)

    @as_connection_errors
    async def claim(self, partition: int) -> PartitionSnapshot:
        """Take ownership of a partition (fencing any earlier owner) and read its state."""
        key = self._key(partition)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, EPOCH_FIELD, 1)
            pipe.hgetall(key)
            _, fields = await pipe.execute()
        return _snapshot(partition, fields)

    @as_connection_errors
    async def checkpoint(self, writes: Mapping[int, PartitionWrite]) -> set[int]:
        """Atomically write states and offsets of all ``writes`` still owned by this worker.

        Returns the partitions that were refused because another worker claimed them since.
        """
        pending = dict(writes)
        fenced: set[int] = set()
        while pending:
            keys = {partition: self._key(partition) for partition in pending}
            async with self._client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(*keys.values())
                    epochs = [await pipe.hget(key, EPOCH_FIELD) for key in keys.values()]
                    for (partition, _), epoch in zip(keys.items(), epochs, strict=True):
                        if epoch is None or int(epoch) != pending[partition].epoch:
                            fenced.add(partition)
                    for partition in fenced:
                        pending.pop(partition, None)
                    if not pending:
                        break
                    pipe.multi()
                    for partition, write in pending.items():
                        mapping: dict[str, bytes | int] = {OFFSET_FIELD: write.applied_offset}
                        mapping.update({KEY_PREFIX + k: v for k, v in write.states.items()})
                        pipe.hset(keys[partition], mapping=mapping)
                    await pipe.execute()
                    break
                except WatchError:
                    continue  # a hash changed under us: re-check epochs and retry
        return fenced

    @as_connection_errors
    async def quarantine(self, partition: int, model_key: str, blob: bytes, reason: str) -> None:
        """Keep an undecodable key state aside (with why) before the key is started afresh."""
        key = self._keys.quarantine(self._topic, partition)
        await self._client.hset(key, mapping={model_key: blob, f"{model_key}:reason": reason})

    @as_connection_errors
    async def read(self, partition: int) -> PartitionSnapshot:
        """Read a partition's state without claiming it (for status views)."""
        return _snapshot(partition, await self._client.hgetall(self._key(partition)))

    @as_connection_errors
    async def partitions(self) -> list[int]:
        """Partitions of the topic that have any stored state."""
        pattern = self._keys.partition_state_pattern(self._topic)
        found = [key async for key in self._client.scan_iter(match=pattern, count=1000)]
        return sorted(int(key.decode().rsplit(":", 1)[1]) for key in found)

    @as_connection_errors
    async def applied_offset(self, partition: int) -> int:
        """One HGET of the offset field."""
        raw = await self._client.hget(self._key(partition), OFFSET_FIELD)
        return NO_OFFSET if raw is None else int(raw)

    @as_connection_errors
    async def stored_bytes(self, partition: int) -> int:
        """What the partition's hash takes in Redis (``MEMORY USAGE``; for the benchmarks)."""
        return int(await self._client.memory_usage(self._key(partition)) or 0)


def _snapshot(partition: int, fields: Mapping[bytes, bytes]) -> PartitionSnapshot:
    prefix = KEY_PREFIX.encode()
    return PartitionSnapshot(
        partition=partition,
        epoch=int(fields.get(EPOCH_FIELD.encode(), 0)),
        applied_offset=int(fields.get(OFFSET_FIELD.encode(), NO_OFFSET)),
        states={
            name[len(prefix) :].decode(): value
            for name, value in fields.items()
            if name.startswith(prefix)
        },
    )
