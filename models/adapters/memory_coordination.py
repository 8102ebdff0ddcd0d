"""In-memory twins of the coordination ports, for tests without Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from models.coordination import LeaseLostError


class MemoryRetrainGuard:
    """One guard with an expiry, on a settable clock.

    >>> import asyncio
    >>> guard = MemoryRetrainGuard()
    >>> asyncio.run(guard.claim("a", 60)), asyncio.run(guard.claim("b", 60))
    (True, False)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._holder: tuple[str, float] | None = None

    async def claim(self, request_id: str, ttl_s: float) -> bool:
        """Take the guard if it is free or expired; else tell whether ``request_id`` holds it."""
        now = self._clock()
        if self._holder is None or self._holder[1] <= now:
            self._holder = (request_id, now + max(1, int(ttl_s)))
            return True
        return self._holder[0] == request_id


class MemoryLease:
    """A lease shared by the handles of one :class:`MemoryRetrainerState`; it expires
    ``lease_s`` after it was last taken or renewed, as the Redis lock does."""

    def __init__(self, owner: MemoryRetrainerState, lease_s: float) -> None:
        self._owner = owner
        self._lease_s = lease_s

    def acquire(self, blocking_timeout: float) -> bool:
        """Take the lease if free or expired, waiting up to ``blocking_timeout``."""
        deadline = time.monotonic() + blocking_timeout
        while True:
            with self._owner.guard:
                now = time.monotonic()
                if self._owner.leader is None or self._owner.expires <= now:
                    self._owner.leader = self
                    self._owner.expires = now + self._lease_s
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def reacquire(self) -> None:
        """Renew; raise :class:`LeaseLostError` unless this handle holds an unexpired lease."""
        with self._owner.guard:
            now = time.monotonic()
            if self._owner.leader is not self or self._owner.expires <= now:
                raise LeaseLostError("the retrainer lease expired or is held by another handle")
            self._owner.expires = now + self._lease_s

    def release(self) -> None:
        """Free the lease if this handle holds it."""
        with self._owner.guard:
            if self._owner.leader is self:
                self._owner.leader = None


class MemoryRetrainerState:
    """Offset, last finish and the leader lease in one process."""

    def __init__(self) -> None:
        self.offset = 0
        self.finished: float | None = None
        self.marks: dict[str, float] = {}
        self.leader: MemoryLease | None = None
        self.expires = 0.0  # monotonic time the leader's lease runs out
        self.guard = threading.Lock()

    def committed_offset(self) -> int:
        """The committed offset."""
        return self.offset

    def commit_offset(self, next_offset: int) -> None:
        """Remember the offset."""
        self.offset = next_offset

    def last_finished(self) -> float | None:
        """The last finish time."""
        return self.finished

    def mark_finished(self, at: float) -> None:
        """Remember the finish time."""
        self.finished = at

    def trigger_marks(self) -> dict[str, float]:
        """The trigger marks."""
        return dict(self.marks)

    def set_trigger_marks(self, marks: Mapping[str, float]) -> None:
        """Remember the given marks."""
        self.marks.update(marks)

    def leader_lease(self, lease_s: float) -> MemoryLease:
        """A new handle on the one lease."""
        return MemoryLease(self, lease_s)


class MemoryNotifierState:
    """The notifier's offsets and delivered marks in one process (marks expire by ``clock``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._offsets: dict[str, int] = {}
        self._sent: dict[tuple[str, str], float] = {}
        self._clock = clock

    def offsets(self) -> dict[str, int]:
        """The offsets."""
        return dict(self._offsets)

    def commit_offsets(self, offsets: Mapping[str, int]) -> None:
        """Remember the offsets."""
        self._offsets.update(offsets)

    def delivered(self, notice_id: str, target: str) -> bool:
        """Whether the mark exists and has not expired."""
        until = self._sent.get((target, notice_id))
        return until is not None and until > self._clock()

    def mark_delivered(self, notice_id: str, target: str, ttl_s: float) -> None:
        """Remember the mark until ``ttl_s`` from now."""
        self._sent[(target, notice_id)] = self._clock() + ttl_s


class MemoryReplayLedger:
    """Replayed dead letters in a dict (the twin of the Redis ledger).

    >>> ledger = MemoryReplayLedger()
    >>> ledger.claim("t.dlq:0:5", "x"), ledger.claim("t.dlq:0:5", "y")
    (True, False)
    >>> ledger.replayed(["t.dlq:0:5", "t.dlq:0:6"])
    {'t.dlq:0:5': 'x'}
    """

    def __init__(self) -> None:
        self._marks: dict[str, str] = {}

    def claim(self, letter: str, detail: str) -> bool:
        """Mark ``letter`` unless it is marked."""
        if letter in self._marks:
            return False
        self._marks[letter] = detail
        return True

    def replayed(self, letters: list[str]) -> dict[str, str]:
        """The marks of ``letters`` that have one."""
        return {letter: self._marks[letter] for letter in letters if letter in self._marks}
