"""Following the active batch model: poll the Redis pointer, load off the event loop, swap."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from models.batch import BatchModel, BatchModelError, load_batch_model
from models.redis_keys import RedisKeys
from models.registry import ModelStore

log = logging.getLogger(__name__)


class BatchModelHolder:
    """The batch model currently used for scoring; replaced whole, never mutated."""

    def __init__(self) -> None:
        self.current: BatchModel | None = None

    @property
    def version(self) -> str | None:
        """Version id of the current model, or None."""
        return None if self.current is None else self.current.version


class BatchModelFollower:
    """Keeps a :class:`BatchModelHolder` on the version the registry pointer names.

    Loading (file read, checksum, parse, smoke prediction) runs in a worker thread; the swap is
    one assignment on the event loop, so a scoring batch sees either the old or the new model.
    A version that fails validation is not retried for ``retry_after_s`` and the worker keeps
    serving with the model it had.
    """

    def __init__(
        self,
        holder: BatchModelHolder,
        client: aioredis.Redis,
        keys: RedisKeys,
        store: ModelStore,
        features: Sequence[str],
        threads: int = 1,
        retry_after_s: float = 30.0,
    ) -> None:
        self.holder = holder
        self._client = client
        self._pointer_key = keys.active_model
        self._store = store
        self._features = tuple(features)
        self._threads = threads
        self._retry_after_s = retry_after_s
        self._failed: dict[str, float] = {}
        self.last_error: str | None = None

    async def sync(self) -> bool:
        """Load the active version if it changed; True when a new model was swapped in."""
        raw = await self._client.get(self._pointer_key)
        wanted = raw.decode() if raw is not None else None
        if wanted is None or wanted == self.holder.version:
            return False
        failed_at = self._failed.get(wanted)
        if failed_at is not None and time.monotonic() - failed_at < self._retry_after_s:
            return False
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(
                None, load_batch_model, self._store, wanted, self._features, self._threads
            )
        except BatchModelError as exc:
            self._failed[wanted] = time.monotonic()
            self.last_error = str(exc)
            log.error(
                "batch model refused; still serving the previous one",
                extra={"version": wanted, "serving": self.holder.version, "error": str(exc)},
            )
            return False
        previous = self.holder.version
        self.holder.current = model
        self.last_error = None
        log.info("batch model activated", extra={"version": wanted, "previous": previous})
        return True
