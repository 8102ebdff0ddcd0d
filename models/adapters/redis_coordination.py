"""The coordination ports (:mod:`models.coordination`) on Redis."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from models.adapters.redis_errors import as_connection_errors
from models.adapters.redis_keys import RedisKeys

#: Lease of the retrainer leader; the keep-alive renews it every quarter of this.
LEADER_LEASE_S = 60


class RedisRetrainGuard:
    """``SET NX EX`` on one key: the first request id to set it wins until it expires."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self._client = client
        self._key = keys.drift_retrain_guard

    @as_connection_errors
    async def claim(self, request_id: str, ttl_s: float) -> bool:
        """Take the guard, or tell whether ``request_id`` already holds it."""
        if await self._client.set(self._key, request_id, nx=True, ex=max(1, int(ttl_s))):
            return True
        holder = await self._client.get(self._key)
        return holder is not None and holder.decode() == request_id


class RedisRetrainerState:
    """The retrainer's offset, last finish time and leader lock in Redis."""

    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys

    def committed_offset(self) -> int:
        """GET the committed offset."""
        return int(self._client.get(self._keys.retrainer_offset) or 0)

    def commit_offset(self, next_offset: int) -> None:
        """SET the committed offset."""
        self._client.set(self._keys.retrainer_offset, next_offset)

    def last_finished(self) -> float | None:
        """GET the last finish time."""
        raw = self._client.get(self._keys.retrainer_last_finished)
        return None if raw is None else float(raw)

    def mark_finished(self, at: float) -> None:
        """SET the last finish time."""
        self._client.set(self._keys.retrainer_last_finished, at)

    def leader_lease(self) -> redis.lock.Lock:
        """A redis-py lock with a 60 s lease.

        Not thread-local: the thread that renews it is not the one that took it (with redis-py's
        default, the renewal raised AttributeError after 15 s, the thread died and the lock
        expired under a leader that was still working).
        """
        return self._client.lock(
            self._keys.retrainer_leader, timeout=LEADER_LEASE_S, thread_local=False
        )
