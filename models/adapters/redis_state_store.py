"""Online-learner state in Redis: per input partition, the applied offset and every key's state.

One Redis hash per partition holds ``__offset__`` (last applied input offset), ``__epoch__``
(fencing token) and ``k:<model key>`` (encoded :class:`~models.keyed.KeyModel`, its drift
outbox included). A worker that takes a partition *claims* it: a Lua script bumps the epoch and
reads the hash. A checkpoint runs one Lua script per partition that writes the states and the
offset only if the epoch is still the one the writer claimed, so a worker that lost a partition
(a zombie after a rebalance) is refused instead of overwriting the new owner.

Every script touches one key, so the same code runs on one Redis and on Redis Cluster (where a
script's keys must share a slot); the scripts of one checkpoint go out in one pipeline (one
round trip per node). Each partition's write is atomic on its own; partitions are independent
(each resumes from its own offset), so a checkpoint that fails half-way is retried whole.
"""

from __future__ import annotations

from collections.abc import Mapping

from models.adapters.redis_clients import AsyncRedisClient
from models.adapters.redis_errors import as_connection_errors
from models.adapters.redis_keys import RedisKeys
from models.state_store import NO_OFFSET, PartitionSnapshot, PartitionWrite

OFFSET_FIELD = "__offset__"
EPOCH_FIELD = "__epoch__"
KEY_PREFIX = "k:"

#: KEYS[1] the partition's hash. Bumps the epoch, returns the whole hash (field, value, ...).
CLAIM_SCRIPT = f"""
redis.call('HINCRBY', KEYS[1], '{EPOCH_FIELD}', 1)
return redis.call('HGETALL', KEYS[1])
"""

#: KEYS[1] the partition's hash; ARGV: the writer's epoch, the applied offset, then field,
#: value pairs. Returns 1 when written, 0 when the epoch moved on (fenced). HSET goes in chunks
#: of 500 pairs: ``unpack`` of one very long list overflows Lua's C stack.
CHECKPOINT_SCRIPT = f"""
if redis.call('HGET', KEYS[1], '{EPOCH_FIELD}') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], '{OFFSET_FIELD}', ARGV[2])
for first = 3, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
return 1
"""


class RedisStateStore:
    """The :class:`~models.state_store.StateStore` port on Redis or Redis Cluster (errors:
    ``ConnectionError``)."""

    def __init__(self, client: AsyncRedisClient, keys: RedisKeys, topic: str) -> None:
        self._client = client
        self._keys = keys
        self._topic = topic

    def _key(self, partition: int) -> str:
        return self._keys.partition_state(self._topic, partition)

    @as_connection_errors
    async def claim(self, partition: int) -> PartitionSnapshot:
        """Take ownership of a partition (fencing any earlier owner) and read its state."""
        flat = await self._client.eval(CLAIM_SCRIPT, 1, self._key(partition))
        return _snapshot(partition, dict(zip(flat[::2], flat[1::2], strict=True)))

    @as_connection_errors
    async def checkpoint(self, writes: Mapping[int, PartitionWrite]) -> set[int]:
        """Write the states and offset of each of ``writes`` still owned by this worker, each
        partition atomically. Returns the partitions refused because another worker claimed
        them since."""
        if not writes:
            return set()
        async with self._client.pipeline(transaction=False) as pipe:
            for partition, write in writes.items():
                pairs = [part for k, v in write.states.items() for part in (KEY_PREFIX + k, v)]
                pipe.eval(
                    CHECKPOINT_SCRIPT,
                    1,
                    self._key(partition),
                    write.epoch,
                    write.applied_offset,
                    *pairs,
                )
            written = await pipe.execute()
        return {partition for partition, ok in zip(writes, written, strict=True) if not ok}

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
