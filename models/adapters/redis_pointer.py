"""The :class:`~models.model_source.ActivePointer` port on Redis (the registry's pointer key)."""

from __future__ import annotations

from models.adapters.redis_clients import AsyncRedisClient
from models.adapters.redis_errors import as_connection_errors
from models.adapters.redis_keys import RedisKeys
from models.model_source import Versions


class RedisPointer:
    """Reads the versions the registry wrote (one GET, or one MGET for both)."""

    def __init__(self, client: AsyncRedisClient, keys: RedisKeys) -> None:
        self._client = client
        self._key = keys.active_model
        self._staged_key = keys.staged_model

    @as_connection_errors
    async def active(self) -> str | None:
        """The active version, or None; ``ConnectionError`` when Redis cannot answer."""
        return _text(await self._client.get(self._key))

    @as_connection_errors
    async def versions(self) -> Versions:
        """Active and staged in one MGET (both keys carry the registry's hash tag: one slot)."""
        active, staged = await self._client.mget(self._key, self._staged_key)
        return Versions(_text(active), _text(staged))


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode(errors="replace")
