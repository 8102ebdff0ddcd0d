"""Ports for coordinating retrains across processes: the workers' drift-retrain guard and the
retrainer's own state (its read position, last finish, leadership).

Adapters: :mod:`models.adapters.redis_coordination` and the in-memory twins in
:mod:`models.adapters.memory_coordination`, both run through ``tests/contract``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class RetrainGuard(Protocol):
    """Lets one drift retrain request through per period, across keys and workers."""

    async def claim(self, request_id: str, ttl_s: float) -> bool:
        """True if ``request_id`` holds the guard (it took it now, or already held it); False
        while another request holds it (for at most ``ttl_s`` after that one took it)."""
        ...


class LeaseLostError(RuntimeError):
    """The lease is no longer this holder's (it expired and was taken, or was released)."""


class LeaderLease(Protocol):
    """A lease only one retrainer holds at a time; it expires unless renewed.

    Errors speak the port's language: :class:`LeaseLostError` when the lease is gone,
    ``ConnectionError`` when its backend cannot answer (the holder may still hold it).
    """

    def acquire(self, blocking_timeout: float) -> bool:
        """Take the lease, waiting at most ``blocking_timeout`` seconds."""
        ...

    def reacquire(self) -> None:
        """Renew the lease; :class:`LeaseLostError` if it was lost, ``ConnectionError`` if
        the backend cannot answer now."""
        ...

    def release(self) -> None:
        """Give the lease up."""
        ...


class RetrainerState(Protocol):
    """What a retrainer keeps outside itself, so another can take over where it stopped."""

    def committed_offset(self) -> int:
        """Next ``retrain-requests`` offset to act on (0 when none was committed)."""
        ...

    def commit_offset(self, next_offset: int) -> None:
        """Everything before ``next_offset`` was acted on."""
        ...

    def last_finished(self) -> float | None:
        """Epoch seconds when the last retrain finished, or None."""
        ...

    def mark_finished(self, at: float) -> None:
        """Record that a retrain finished at ``at`` (epoch seconds; drives the cooldown)."""
        ...

    def trigger_marks(self) -> dict[str, float]:
        """Where the retrain triggers stand (``models.triggers``: next due time, outcomes
        counted); empty before they first looked."""
        ...

    def set_trigger_marks(self, marks: Mapping[str, float]) -> None:
        """Store the given marks (others are kept)."""
        ...

    def leader_lease(self, lease_s: float) -> LeaderLease:
        """A new handle on the retrainer leader's lease, which expires ``lease_s`` seconds
        after it was last taken or renewed (how long a dead leader blocks its standby)."""
        ...


class NotifierState(Protocol):
    """What ``streamlearn notify`` keeps outside itself: where it is in each topic partition
    and which notices each webhook already got (so a restart neither loses nor repeats one)."""

    def offsets(self) -> dict[str, int]:
        """Next offset per ``topic:partition`` (absent: from the start)."""
        ...

    def commit_offsets(self, offsets: Mapping[str, int]) -> None:
        """Everything before these offsets was delivered (or given up on)."""
        ...

    def delivered(self, notice_id: str, target: str) -> bool:
        """Whether ``target`` got this notice (within the remembered time)."""
        ...

    def mark_delivered(self, notice_id: str, target: str, ttl_s: float) -> None:
        """Remember for ``ttl_s`` seconds that ``target`` got this notice."""
        ...


class ReplayLedger(Protocol):
    """Which dead letters were replayed (``streamlearn dlq replay``): a letter is claimed before
    its original is produced again, so no letter is replayed twice."""

    def claim(self, letter: str, detail: str) -> bool:
        """Mark ``letter`` (``topic:partition:offset`` of the dead letter) replayed; False when
        it was marked before (then nothing may be produced for it)."""
        ...

    def replayed(self, letters: list[str]) -> dict[str, str]:
        """The marks of those of ``letters`` that were replayed, by letter."""
        ...
