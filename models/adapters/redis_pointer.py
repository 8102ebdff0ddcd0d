"""The :class:`~models.model_source.ActivePointer` port on Redis (the registry's pointer key)."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from models.adapters.redis_keys import RedisKeys


class RedisPointer:
    """Reads the active version the registry wrote (one GET)."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self._client = client
        self._key = keys.active_model

    async def active(self) -> str | None:
        """The active version, or None; ``ConnectionError`` when Redis cannot answer."""
        try:
            raw = await self._client.get(self._key)
        except RedisError as exc:  # the port's contract speaks OSError, not redis-py
            raise ConnectionError(f"active-version pointer unreadable: {exc}") from exc
        return None if raw is None else raw.decode(errors="replace")
