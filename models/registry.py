"""The model registry: which batch version is active or staged, and the history of changes.

Every change is first appended (fsynced) to a journal next to the models,
``<store>/registry.jsonl``, then applied to Redis in one MULTI/EXEC under a short lock (the
adapter: :mod:`models.adapters.redis_registry`). Workers read the pointer from Redis; if Redis
is wiped, ``ModelRegistry.rebuild`` replays the journal and restores the same active version,
staged version and history.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from models.store import ModelStore

JOURNAL_FILE = "registry.jsonl"
ACTIVATING = ("activate", "rollback")


class RegistryError(RuntimeError):
    """A registry change is not possible (unknown version, nothing to roll back to, ...)."""


@dataclass(frozen=True)
class RegistryEvent:
    """One change of the registry: who did what to which version, and why."""

    action: str  # activate | rollback | stage | unstage
    version: str | None
    previous: str | None
    at: str
    by: str
    reason: str

    @classmethod
    def from_json(cls, data: bytes | str) -> RegistryEvent:
        """Parse a journal line or history entry."""
        return cls(**orjson.loads(data))

    def to_json(self) -> bytes:
        """One line of JSON."""
        return orjson.dumps(asdict(self))


@dataclass
class RegistryState:
    """Active and staged versions and the full history, oldest first."""

    active: str | None = None
    staged: str | None = None
    history: list[RegistryEvent] = field(default_factory=list)

    def apply(self, event: RegistryEvent) -> None:
        """Advance the state by one event (the journal replays through this)."""
        if event.action in ACTIVATING:
            self.active = event.version
            if self.staged == event.version:
                self.staged = None
        elif event.action == "stage":
            self.staged = event.version
        elif event.action == "unstage":
            self.staged = None
        else:
            raise RegistryError(f"unknown registry action {event.action!r}")
        self.history.append(event)

    def ever_active(self) -> list[str]:
        """Every version that was active at some point, in order of first activation."""
        seen: dict[str, None] = {}
        for event in self.history:
            if event.action in ACTIVATING and event.version:
                seen.setdefault(event.version, None)
        return list(seen)

    def previous_active(self) -> str | None:
        """The version that was active before the current one."""
        actives = [e.version for e in self.history if e.action in ACTIVATING]
        for version in reversed(actives[:-1]):
            if version != self.active:
                return version
        return None


class Journal:
    """Append-only, fsynced JSON-lines log of registry events on the model store's disk."""

    def __init__(self, store: ModelStore) -> None:
        self.path = Path(store.root) / JOURNAL_FILE

    def append(self, event: RegistryEvent) -> None:
        """Durably add one event."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, event.to_json() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def events(self) -> list[RegistryEvent]:
        """All complete events, oldest first (a torn last line from a crash is ignored)."""
        if not self.path.exists():
            return []
        events = []
        for line in self.path.read_bytes().splitlines():
            try:
                events.append(RegistryEvent.from_json(line))
            except (orjson.JSONDecodeError, TypeError):
                continue
        return events


@dataclass(frozen=True)
class Fence:
    """A fencing token: registry changes made under it are refused once a newer one exists.

    A retrainer that paused past its lock's expiry (GC, a frozen VM) still believes it leads;
    its token is older than the one the new leader took, so its promotion is refused inside the
    same transaction that would have written it.
    """

    key: str
    token: int


class FencedError(RuntimeError):
    """A registry change was refused: the caller's fencing token is no longer the newest."""
