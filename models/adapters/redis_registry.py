"""The model registry on Redis: the active/staged pointers and history, journaled on disk.

The registry's events, state, journal and fencing tokens are :mod:`models.registry`; this is
where they meet Redis (one MULTI/EXEC per change under a short lock).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import redis
from redis.exceptions import WatchError

from models.adapters.redis_keys import RedisKeys
from models.registry import (
    ACTIVATING,
    Fence,
    FencedError,
    Journal,
    RegistryError,
    RegistryEvent,
    RegistryState,
)
from models.store import ModelStore


class ModelRegistry:
    """Active / staged batch model versions, in Redis and journaled on disk."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, store: ModelStore) -> None:
        self._client = client
        self._keys = keys
        self.store = store
        self.journal = Journal(store)

    def active(self) -> str | None:
        """The active version (what every worker scores with)."""
        return _text(self._client.get(self._keys.active_model))

    def state(self) -> RegistryState:
        """Active, staged and history as Redis holds them."""
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

    def activate(
        self, version: str, by: str, reason: str, fence: Fence | None = None
    ) -> RegistryEvent:
        """Make ``version`` active (it must exist in the store and pass its checksum)."""
        self.store.load(version)
        return self._record("activate", version, by, reason, fence)

    def stage(
        self, version: str, by: str, reason: str, fence: Fence | None = None
    ) -> RegistryEvent:
        """Mark ``version`` as waiting for a manual promotion."""
        self.store.load(version)
        return self._record("stage", version, by, reason, fence)

    def check_fence(self, fence: Fence | None) -> None:
        """Raise :class:`FencedError` if ``fence`` is no longer the newest token."""
        if fence is None:
            return
        current = self._client.get(fence.key)
        if current is None or int(current) != fence.token:
            raise FencedError(
                f"fencing token {fence.token} is stale (newest {_text(current)}): another "
                "retrainer leads now"
            )

    def promote(self, version: str | None, by: str, reason: str) -> RegistryEvent:
        """Activate ``version``, or the staged version when none is given."""
        target = version or self.state().staged
        if target is None:
            raise RegistryError("nothing is staged; name the version to promote")
        return self.activate(target, by, reason)

    def rollback(self, version: str | None, by: str, reason: str) -> RegistryEvent:
        """Re-activate ``version`` (default: the one active before the current one)."""
        state = self.state()
        target = version or state.previous_active()
        if target is None:
            raise RegistryError("no earlier active version to roll back to")
        if target not in state.ever_active():
            raise RegistryError(f"version {target} was never active; use promote")
        if target == state.active:
            raise RegistryError(f"version {target} is already active")
        self.store.load(target)
        return self._record("rollback", target, by, reason)

    def rebuild(self) -> RegistryState:
        """Restore Redis from the journal (after Redis lost the registry keys)."""
        state = RegistryState()
        for event in self.journal.events():
            state.apply(event)
        with self._locked():
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(self._keys.active_model, self._keys.staged_model)
            pipe.delete(self._keys.registry_history)
            if state.active:
                pipe.set(self._keys.active_model, state.active)
            if state.staged:
                pipe.set(self._keys.staged_model, state.staged)
            if state.history:
                pipe.rpush(self._keys.registry_history, *[e.to_json() for e in state.history])
            pipe.execute()
        return state

    def protected_versions(self) -> set[str]:
        """Versions retention must keep: every version ever active, and the staged one."""
        state = self.state()
        journal = RegistryState()
        for event in self.journal.events():
            journal.apply(event)
        keep = set(state.ever_active()) | set(journal.ever_active())
        return keep | {v for v in (state.staged, journal.staged, state.active) if v}

    def prune(self, keep_last: int) -> list[str]:
        """Delete versions beyond the newest ``keep_last``, except protected ones."""
        protected = self.protected_versions()
        versions = self.store.versions()
        doomed = [v for v in versions[: max(0, len(versions) - keep_last)] if v not in protected]
        for version in doomed:
            self.store.delete(version)
        return doomed

    def _record(
        self, action: str, version: str, by: str, reason: str, fence: Fence | None = None
    ) -> RegistryEvent:
        with self._locked():
            state = self.state()
            previous = state.active if action in ACTIVATING else state.staged
            event = RegistryEvent(
                action=action,
                version=version,
                previous=previous,
                at=datetime.now(UTC).isoformat(),
                by=by,
                reason=reason,
            )
            with self._client.pipeline(transaction=True) as pipe:
                if fence is not None:
                    pipe.watch(fence.key)  # the write below fails if a new token is taken
                    current = pipe.get(fence.key)
                    if current is None or int(current) != fence.token:
                        raise FencedError(
                            f"fencing token {fence.token} is stale (newest {_text(current)}): "
                            "another retrainer leads now"
                        )
                self.journal.append(event)
                pipe.multi()
                if action in ACTIVATING:
                    pipe.set(self._keys.active_model, version)
                    if state.staged == version:
                        pipe.delete(self._keys.staged_model)
                elif action == "stage":
                    pipe.set(self._keys.staged_model, version)
                pipe.rpush(self._keys.registry_history, event.to_json())
                try:
                    pipe.execute()
                except WatchError:
                    raise FencedError(
                        f"fencing token {fence.token if fence else None} was superseded while "
                        "the change was being written"
                    ) from None
        return event

    @contextmanager
    def _locked(self, timeout_s: float = 10.0) -> Iterator[None]:
        lock = self._client.lock(self._keys.registry_lock, timeout=30, blocking_timeout=timeout_s)
        if not lock.acquire():
            raise RegistryError("registry is locked by another process")
        try:
            yield
        finally:
            lock.release()


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
