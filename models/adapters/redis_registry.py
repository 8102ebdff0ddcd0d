"""The :class:`~models.registry.RegistryBackend` port on Redis: pointers and history under one
namespace, one MULTI/EXEC per change under a short lock, fencing tokens from an INCR counter.

All these keys share one hash tag (see :mod:`models.adapters.redis_keys`), so the same code
runs on one Redis and on Redis Cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.cluster import RedisCluster
from redis.exceptions import ResponseError, WatchError

from models.adapters.redis_clients import RedisClient
from models.adapters.redis_keys import RedisKeys
from models.registry import (
    ACTIVATING,
    Fence,
    FencedError,
    RegistryError,
    RegistryEvent,
    RegistryState,
)

log = logging.getLogger(__name__)


class RedisRegistry:
    """The registry's pointers (active, staged), history and fencing counter in Redis."""

    def __init__(self, client: RedisClient, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys
        self._adopted = False

    def _adopt_once(self) -> None:
        """Before this process's first registry call: :meth:`adopt_legacy_keys` (again on the
        next call if Redis could not answer)."""
        if not self._adopted:
            self.adopt_legacy_keys()
            self._adopted = True

    def adopt_legacy_keys(self) -> list[str]:
        """Rename the registry keys an earlier streamlearn wrote without a hash tag to their
        current names, so an upgraded deployment keeps its active model, history and fencing
        counter (every process does it before its first registry call: the worker at start-up,
        the retrainer before its first fencing token, the CLI). Idempotent and cheap (one
        EXISTS when there is nothing to adopt); a key whose new name is taken already is left
        alone (and logged). Returns the names adopted. Nothing to do on Redis Cluster: earlier
        versions could not run on one."""
        if isinstance(self._client, RedisCluster):
            return []
        names = self._keys.legacy_names()
        if not self._client.exists(*names):
            return []
        adopted = []
        for old, new in names.items():
            try:
                renamed = self._client.renamenx(old, new)
            except ResponseError:  # no such key: absent, or another process adopted it first
                continue
            if renamed:
                adopted.append(old)
            else:
                log.warning("legacy registry key kept", extra={"key": old, "current": new})
        if adopted:
            log.info("legacy registry keys adopted", extra={"keys": adopted})
        return adopted

    def active(self) -> str | None:
        """The active version (one GET)."""
        self._adopt_once()
        return _text(self._client.get(self._keys.active_model))

    def read(self) -> RegistryState:
        """Active, staged and history in one transaction."""
        self._adopt_once()
        pipe = self._client.pipeline(transaction=True)
        pipe.get(self._keys.active_model)
        pipe.get(self._keys.staged_model)
        pipe.lrange(self._keys.registry_history, 0, -1)
        active, staged, history = pipe.execute()
        return RegistryState(
            active=_text(active),
            staged=_text(staged),
            history=[RegistryEvent.from_json(item) for item in history],
        )

    @contextmanager
    def locked(self, timeout_s: float = 10.0) -> Iterator[None]:
        """A Redis lock (30 s lease) around one change."""
        lock = self._client.lock(self._keys.registry_lock, timeout=30, blocking_timeout=timeout_s)
        if not lock.acquire():
            raise RegistryError("registry is locked by another process")
        try:
            yield
        finally:
            lock.release()

    def apply(self, event: RegistryEvent, fence: Fence | None, durable: Callable[[], None]) -> None:
        """WATCH the fencing counter, check it, call ``durable``, then MULTI/EXEC the change."""
        self._adopt_once()
        with self._client.pipeline(transaction=True) as pipe:
            if fence is not None:
                pipe.watch(self._keys.retrainer_fence)  # EXEC fails if a new token is taken
                current = pipe.get(self._keys.retrainer_fence)
                if current is None or int(current) != fence.token:
                    raise FencedError(
                        f"fencing token {fence.token} is stale (newest {_text(current)}): "
                        "another retrainer leads now"
                    )
            # Stable until EXEC: the caller holds the registry lock.
            staged = _text(self._client.get(self._keys.staged_model))
            durable()
            pipe.multi()
            if event.action in ACTIVATING:
                pipe.set(self._keys.active_model, str(event.version))
                if staged == event.version:
                    pipe.delete(self._keys.staged_model)
            elif event.action == "stage":
                pipe.set(self._keys.staged_model, str(event.version))
            elif event.action == "unstage":
                pipe.delete(self._keys.staged_model)
            pipe.rpush(self._keys.registry_history, event.to_json())
            try:
                pipe.execute()
            except WatchError:
                raise FencedError(
                    f"fencing token {fence.token if fence else None} was superseded while "
                    "the change was being written"
                ) from None

    def replace(self, state: RegistryState) -> None:
        """Delete and rewrite the three registry keys in one transaction."""
        self._adopt_once()
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(*self._keys.registry_keys())
        if state.active:
            pipe.set(self._keys.active_model, state.active)
        if state.staged:
            pipe.set(self._keys.staged_model, state.staged)
        if state.history:
            pipe.rpush(self._keys.registry_history, *[e.to_json() for e in state.history])
        pipe.execute()

    def take_fence(self) -> Fence:
        """INCR the fencing counter."""
        self._adopt_once()
        return Fence(int(self._client.incr(self._keys.retrainer_fence)))

    def fence_is_current(self, fence: Fence) -> bool:
        """Whether the counter still holds ``fence``'s token."""
        self._adopt_once()
        current = self._client.get(self._keys.retrainer_fence)
        return current is not None and int(current) == fence.token


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
