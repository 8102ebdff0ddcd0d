"""The :class:`~models.model_source.ActivePointer` port on Redis (the registry's pointer key)."""

from __future__ import annotations

from models.adapters.redis_clients import AsyncRedisClient
from models.adapters.redis_errors import as_connection_errors
from models.adapters.redis_keys import RedisKeys


class RedisPointer:
    """Reads the active (or staged) version the registry wrote (one GET)."""

    def __init__(self, client: AsyncRedisClient, keys: RedisKeys) -> None:
        self._client = client
        self._key = keys.active_model
        self._staged_key = keys.staged_model

    @as_connection_errors
    async def active(self) -> str | None:
        """The active version, or None; ``ConnectionError`` when Redis cannot answer."""
        raw = await self._client.get(self._key)
        return None if raw is None else raw.decode(errors="replace")

    @as_connection_errors
    async def staged(self) -> str | None:
        """The staged version, or None; ``ConnectionError`` when Redis cannot answer."""
        raw = await self._client.get(self._staged_key)
        return None if raw is None else raw.decode(errors="replace")
