"""The model registry: which batch version is active or staged, and the history of changes.

Every change is first appended (durably) to a journal on the model store, next to the models
(``registry/<n>.json``, see :class:`Journal`), then applied to the registry's backend
atomically under a short lock (the port: :class:`RegistryBackend`; adapters:
:mod:`models.adapters.redis_registry`, the registry in Redis, and the in-memory twin
:mod:`models.adapters.memory_registry`, both run through ``tests/contract``). Workers read the
pointer from the backend; if it is wiped, :meth:`ModelRegistry.rebuild` replays the journal
and restores the same active version, staged version and history. With the store on S3 the
journal is the same for every host, so a rebuild from any host restores everything.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import orjson

from models.blobs import BlobNotFoundError, BlobStoreError
from models.store import ModelStore

#: Where the journal's events are, on the model store.
JOURNAL_PREFIX = "registry/"
#: The single-file journal of stores written before ``registry/`` (read, never written).
LEGACY_JOURNAL = "registry.jsonl"
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
    """Append-only log of registry events, one object per event on the model store.

    Event *n* is ``registry/<n, 12 digits>.json``, written with a create-only write: two
    writers can never both take one number, so the numbers are a total order of the changes
    without trusting any host's clock. Stores written before this layout kept one
    ``registry.jsonl`` file; its events are read first.
    """

    def __init__(self, store: ModelStore) -> None:
        self.blobs = store.blobs
        # Entries are never rewritten (create-only), so each is fetched and parsed once per
        # process: reading the journal again (retention, rebuild) costs one listing.
        self._parsed: dict[str, RegistryEvent | None] = {}
        self._legacy: list[RegistryEvent] | None = None

    @property
    def location(self) -> str:
        """Where the journal is (for messages)."""
        return f"{self.blobs.location.rstrip('/')}/{JOURNAL_PREFIX}"

    def append(self, event: RegistryEvent) -> None:
        """Durably add one event as the next number."""
        try:
            number = self._last_number() + 1
            while not self.blobs.create(_entry_name(number), event.to_json()):
                number += 1  # taken by a concurrent writer: the next one is ours
        except BlobStoreError as exc:
            raise RegistryError(f"registry journal not written: {exc}") from None

    def state(self) -> RegistryState:
        """The registry as the journal tells it."""
        state = RegistryState()
        for event in self.events():
            state.apply(event)
        return state

    def events(self) -> list[RegistryEvent]:
        """All readable events, oldest first (an unreadable entry is skipped)."""
        try:
            if self._legacy is None:
                self._legacy = [e for e in map(_parsed, self._legacy_lines()) if e is not None]
            names = self._entries()
            for name in names:
                if name not in self._parsed:
                    self._parsed[name] = _parsed(self.blobs.get(name))
        except BlobStoreError as exc:
            raise RegistryError(f"registry journal unreadable: {exc}") from None
        numbered = (self._parsed[name] for name in names)
        return self._legacy + [event for event in numbered if event is not None]

    def _entries(self) -> list[str]:
        return [n for n in self.blobs.names(JOURNAL_PREFIX) if _entry_number(n) is not None]

    def _last_number(self) -> int:
        return max((_entry_number(name) or 0 for name in self._entries()), default=0)

    def _legacy_lines(self) -> list[bytes]:
        try:
            return self.blobs.get(LEGACY_JOURNAL).splitlines()
        except BlobNotFoundError:
            return []


def _parsed(data: bytes) -> RegistryEvent | None:
    try:
        return RegistryEvent.from_json(data)
    except (orjson.JSONDecodeError, TypeError):
        return None


def _entry_name(number: int) -> str:
    return f"{JOURNAL_PREFIX}{number:012d}.json"


def _entry_number(name: str) -> int | None:
    stem = name.removeprefix(JOURNAL_PREFIX).removesuffix(".json")
    return int(stem) if len(stem) == 12 and stem.isdigit() else None


@dataclass(frozen=True)
class Fence:
    """A fencing token: registry changes made under it are refused once a newer one exists.

    A retrainer that paused past its lock's expiry (GC, a frozen VM) still believes it leads;
    its token is older than the one the new leader took, so its promotion is refused inside the
    same transaction that would have written it.
    """

    token: int


class FencedError(RuntimeError):
    """A registry change was refused: the caller's fencing token is no longer the newest."""


class RegistryBackend(Protocol):
    """Where the registry's pointers and history live (the port).

    ``read`` and ``active`` may be called by anyone at any time; changes go through
    ``locked`` + ``apply`` (or ``replace``), which must be atomic: a reader never sees the
    active pointer of one event with the history of another.
    """

    def active(self) -> str | None:
        """The active version (one cheap read)."""
        ...

    def read(self) -> RegistryState:
        """Active, staged and history, read together."""
        ...

    def locked(self) -> AbstractContextManager[None]:
        """Serialise registry changes across processes; :class:`RegistryError` if another
        change holds the lock for too long."""
        ...

    def apply(self, event: RegistryEvent, fence: Fence | None, durable: Callable[[], None]) -> None:
        """Apply ``event`` (as :meth:`RegistryState.apply` would) in one atomic write.

        With a ``fence``, refuse with :class:`FencedError` unless it is still the newest token,
        also if a newer one is taken while the write is prepared. ``durable`` (the journal
        append) is called after the fence check and before the write.
        """
        ...

    def replace(self, state: RegistryState) -> None:
        """Overwrite pointers and history with ``state`` (a rebuild from the journal)."""
        ...

    def take_fence(self) -> Fence:
        """A new fencing token, newer than every token taken before (a new leader's)."""
        ...

    def fence_is_current(self, fence: Fence) -> bool:
        """Whether ``fence`` is still the newest token."""
        ...


class ModelRegistry:
    """Active / staged batch model versions on a :class:`RegistryBackend`, journaled on the
    model store.

    The rules (what may be promoted, rolled back, pruned) live here once; backends only store.
    """

    def __init__(self, backend: RegistryBackend, store: ModelStore) -> None:
        self.backend = backend
        self.store = store
        self.journal = Journal(store)

    def active(self) -> str | None:
        """The active version (what every worker scores with)."""
        return self.backend.active()

    def state(self) -> RegistryState:
        """Active, staged and history as the backend holds them."""
        return self.backend.read()

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
        if fence is not None and not self.backend.fence_is_current(fence):
            raise FencedError(f"fencing token {fence.token} is stale: another retrainer leads now")

    def promote(
        self, version: str | None, by: str, reason: str, force: bool = False
    ) -> RegistryEvent:
        """Activate ``version``, or the staged version when none is given.

        A version the champion/challenger gate rejected is refused unless ``force`` (the
        event's reason then says it was forced past the gate).
        """
        target = version or self.state().staged
        if target is None:
            raise RegistryError("nothing is staged; name the version to promote")
        gate = self.store.load(target).metadata.get("gate")  # the load checks it, as activate
        if isinstance(gate, dict) and gate.get("promote") is False:
            if not force:
                verdict = str(gate.get("reason") or "rejected").split(";")[0]
                raise RegistryError(
                    f"version {target} was rejected by the gate ({verdict}); "
                    "promote it anyway with --force"
                )
            reason = f"{reason} (forced past the gate's rejection)"
        return self._record("activate", target, by, reason)

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

    def rebuild(self, force: bool = False) -> RegistryState:
        """Restore the backend from the journal (after it lost the registry).

        Refused when the backend holds changes the journal lacks -- a journal that looks
        empty or old because this process reads another store than the one the deployment
        writes to must not overwrite the live registry -- unless ``force``.
        """
        with self.backend.locked():
            state = self.journal.state()
            live = self.backend.read().history
            missing = [event for event in live if event not in state.history]
            if missing and not force:
                raise RegistryError(
                    f"the live registry holds {len(missing)} change(s) that the journal at "
                    f"{self.journal.location} lacks (it has {len(state.history)}): is "
                    "batch.store the store this deployment writes to? Nothing was changed; "
                    "--force overwrites the live registry with the journal"
                )
            self.backend.replace(state)
        return state

    def protected_versions(self) -> set[str]:
        """Versions retention must keep: every version ever active, and the staged one."""
        state = self.state()
        journal = self.journal.state()
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
        with self.backend.locked():
            state = self.state()
            event = RegistryEvent(
                action=action,
                version=version,
                previous=state.active if action in ACTIVATING else state.staged,
                at=datetime.now(UTC).isoformat(),
                by=by,
                reason=reason,
            )
            self.backend.apply(event, fence, lambda: self.journal.append(event))
        return event
