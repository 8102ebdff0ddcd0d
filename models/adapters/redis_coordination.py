"""The coordination ports (:mod:`models.coordination`) on Redis."""

from __future__ import annotations

from collections.abc import Mapping

import redis
from redis.exceptions import LockError

from models.adapters.redis_clients import AsyncRedisClient, RedisClient
from models.adapters.redis_errors import REDIS_ERRORS, as_connection_errors
from models.adapters.redis_keys import RedisKeys
from models.coordination import LeaseLostError


class RedisRetrainGuard:
    """``SET NX EX`` on one key: the first request id to set it wins until it expires."""

    def __init__(self, client: AsyncRedisClient, keys: RedisKeys) -> None:
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

    def __init__(self, client: RedisClient, keys: RedisKeys) -> None:
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

    def trigger_marks(self) -> dict[str, float]:
        """HGETALL the trigger marks."""
        raw = self._client.hgetall(self._keys.retrainer_triggers)
        return {name.decode(): float(value) for name, value in raw.items()}

    def set_trigger_marks(self, marks: Mapping[str, float]) -> None:
        """HSET the given trigger marks."""
        if marks:
            self._client.hset(self._keys.retrainer_triggers, mapping=dict(marks))

    def leader_lease(self, lease_s: float) -> RedisLease:
        """A handle on the leader's lock (a lease of ``lease_s`` seconds)."""
        return RedisLease(
            # Not thread-local: the thread that renews it is not the one that took it (with
            # redis-py's default, the renewal raised AttributeError after 15 s, the thread died
            # and the lock expired under a leader that was still working).
            self._client.lock(self._keys.retrainer_leader, timeout=lease_s, thread_local=False)
        )


class RedisNotifierState:
    """The notifier's offsets (a hash) and delivered marks (keys with a TTL) in Redis."""

    def __init__(self, client: RedisClient, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys

    def offsets(self) -> dict[str, int]:
        """HGETALL the offsets."""
        raw = self._client.hgetall(self._keys.notify_offsets)
        return {name.decode(): int(value) for name, value in raw.items()}

    def commit_offsets(self, offsets: Mapping[str, int]) -> None:
        """HSET the offsets."""
        if offsets:
            self._client.hset(self._keys.notify_offsets, mapping=dict(offsets))

    def delivered(self, notice_id: str, target: str) -> bool:
        """EXISTS the mark."""
        return bool(self._client.exists(self._keys.notify_sent(target, notice_id)))

    def mark_delivered(self, notice_id: str, target: str, ttl_s: float) -> None:
        """SET the mark with its expiry."""
        self._client.set(self._keys.notify_sent(target, notice_id), 1, px=max(1, int(ttl_s * 1000)))


class RedisReplayLedger:
    """Replayed dead letters in one hash per dead-letter topic (HSETNX claims)."""

    def __init__(self, client: RedisClient, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys

    def claim(self, letter: str, detail: str) -> bool:
        """HSETNX the letter's mark."""
        return bool(self._client.hsetnx(*self._field(letter), detail))

    def replayed(self, letters: list[str]) -> dict[str, str]:
        """HGET each letter's mark."""
        found = {}
        for letter in letters:
            value = self._client.hget(*self._field(letter))
            if value is not None:
                found[letter] = value.decode()
        return found

    def _field(self, letter: str) -> tuple[str, str]:
        topic, partition, offset = letter.rsplit(":", 2)
        return self._keys.dlq_replayed(topic), f"{partition}:{offset}"


class RedisLease:
    """A redis-py lock as a :class:`~models.coordination.LeaderLease` (errors translated)."""

    def __init__(self, lock: redis.lock.Lock) -> None:
        self._lock = lock

    def acquire(self, blocking_timeout: float) -> bool:
        """Take the lock, waiting at most ``blocking_timeout`` seconds."""
        try:
            return bool(self._lock.acquire(blocking_timeout=blocking_timeout))
        except REDIS_ERRORS as exc:
            raise ConnectionError(f"redis: {exc}") from exc

    def reacquire(self) -> None:
        """Reset the lease to its full length."""
        try:
            self._lock.reacquire()
        except LockError as exc:
            raise LeaseLostError(str(exc)) from exc
        except REDIS_ERRORS as exc:
            raise ConnectionError(f"redis: {exc}") from exc

    def release(self) -> None:
        """Give the lock up (a lock no longer held is not an error here)."""
        try:
            self._lock.release()
        except LockError:
            pass
        except REDIS_ERRORS as exc:
            raise ConnectionError(f"redis: {exc}") from exc
