"""An in-memory twin of the registry backend, for tests without Redis."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy

from models.registry import Fence, FencedError, RegistryError, RegistryEvent, RegistryState


class MemoryRegistry:
    """Pointers, history and the fencing counter in one process (thread-safe).

    >>> from models.registry import RegistryEvent
    >>> registry = MemoryRegistry()
    >>> registry.apply(RegistryEvent("activate", "v1", None, "t", "me", "why"), None, lambda: None)
    >>> registry.active()
    'v1'
    """

    def __init__(self) -> None:
        self._state = RegistryState()
        self._fence = 0
        self._lock = threading.Lock()

    def active(self) -> str | None:
        """The active version."""
        return self._state.active

    def read(self) -> RegistryState:
        """A copy of the state (callers cannot change the twin behind its back)."""
        return deepcopy(self._state)

    @contextmanager
    def locked(self, timeout_s: float = 10.0) -> Iterator[None]:
        """A process-local lock around one change."""
        if not self._lock.acquire(timeout=timeout_s):
            raise RegistryError("registry is locked by another thread")
        try:
            yield
        finally:
            self._lock.release()

    def apply(self, event: RegistryEvent, fence: Fence | None, durable: Callable[[], None]) -> None:
        """Check the fence, call ``durable``, apply the event."""
        if fence is not None and fence.token != self._fence:
            raise FencedError(
                f"fencing token {fence.token} is stale (newest {self._fence}): another "
                "retrainer leads now"
            )
        durable()
        self._state.apply(event)

    def replace(self, state: RegistryState) -> None:
        """Overwrite everything with ``state``."""
        self._state = deepcopy(state)

    def take_fence(self) -> Fence:
        """The next token."""
        self._fence += 1
        return Fence(self._fence)

    def fence_is_current(self, fence: Fence) -> bool:
        """Whether ``fence`` is the newest token."""
        return fence.token == self._fence
