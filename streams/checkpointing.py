"""The checkpoint protocol: one implementation, called by both engines.

What it guarantees (see ``docs/architecture.md``, "Exactly-once effect"):

1. **Snapshot at one instant.** The sends made so far (signals, dead letters) and the learner
   state (every dirty key and each partition's applied offset) are captured together, with no
   ``await`` in between. A record's offset is in the state only after its effect is: learned,
   or turned into a dead letter that was sent before the snapshot.
2. **Outputs first.** The sends captured in (1) are confirmed by the broker before the state is
   written. If they cannot be confirmed the engine must reset to the last checkpoint
   (:class:`OutputsLostError`): nothing is written and nothing is acknowledged.
3. **State and offset together.** One Redis transaction writes the states and applied offsets,
   guarded by each partition's fencing epoch (a worker that lost a partition cannot write it).
4. **Then acknowledge.** Only the offsets written in (3) are acked / committed to Kafka, and
   only then is the drift outbox published (its entries were checkpointed in (3)).
5. **Outages pause, never crash.** If the store cannot be reached the state stays in memory,
   learning pauses and the checkpoint is retried with exponential backoff; once it lands,
   learning resumes exactly where it was. Only an outage longer than ``max_outage_s`` is
   reported as fatal (:meth:`Checkpointer.outage_exceeded`).
6. **Resume from the store.** On assignment a partition is claimed from Redis; the consumer
   must read on from the stored applied offset + 1 (:meth:`Checkpointer.claim` returns it),
   whatever Kafka's committed offset says (Redis may be ahead of Kafka, or behind it after a
   Redis failover).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.online_state import OnlineState, OutboxDue
from streams.telemetry import EngineMetrics

log = logging.getLogger(__name__)

#: What a store outage looks like from here (connection refused or reset, timeouts): the
#: adapters raise ``ConnectionError`` (an ``OSError``) for their backend's own errors.
STORE_ERRORS: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError)


class OutputsLostError(RuntimeError):
    """Sends could not be confirmed by the broker: the engine must reset to the last checkpoint."""


class Sender(Protocol):
    """Produces records; :meth:`mark` + :meth:`flush` confirm everything sent before the mark."""

    async def send_all(self, records: Any) -> None:
        """Send (a sender may return before delivery; see :meth:`flush`)."""
        ...

    def mark(self) -> Any:
        """A token for "everything sent so far" (taken synchronously)."""
        ...

    async def flush(self, mark: Any = None) -> None:
        """Wait until everything sent before ``mark`` (default: now) is acknowledged."""
        ...

    def discard(self) -> None:
        """Forget sends whose fate is unknown (after a reset they are made again)."""
        ...


class Publisher(Protocol):
    """Publishes the checkpointed outbox (drift alerts, retrain requests)."""

    async def flush(self, state: OnlineState, due: Sequence[OutboxDue]) -> int:
        """Publish the entries a written checkpoint covers; returns how many were sent."""
        ...


@dataclass
class Backoff:
    """Exponential backoff between retries of something that failed, and how long it has."""

    initial_s: float = 0.1
    max_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    first_failure: float | None = None
    next_try: float = 0.0

    def failed(self) -> float:
        """Record a failure; returns the delay before the next try."""
        now = self.clock()
        if self.first_failure is None:
            self.first_failure = now
        delay = min(self.max_s, self.initial_s * 2**self.failures)
        self.failures += 1
        self.next_try = now + delay
        return delay

    def succeeded(self) -> None:
        """The thing works again."""
        self.failures = 0
        self.first_failure = None
        self.next_try = 0.0

    @property
    def ready(self) -> bool:
        """Whether the next try may happen now."""
        return self.clock() >= self.next_try

    @property
    def failing_for_s(self) -> float:
        """Seconds since the first failure of the current run of failures (0 if none)."""
        return 0.0 if self.first_failure is None else self.clock() - self.first_failure


@dataclass
class CheckpointResult:
    """What a checkpoint made safe: offsets per partition that may be acknowledged now."""

    committed: dict[int, int] = field(default_factory=dict)
    fenced: set[int] = field(default_factory=set)
    #: False when the store was unreachable: the outputs were confirmed but no state written.
    stored: bool = True


class Checkpointer:
    """Cadence, checkpoint, acknowledgement order, outages and claims: the one protocol.

    An engine calls :meth:`applied` after each learned micro-batch, :meth:`due` to ask whether
    to checkpoint, :meth:`checkpoint` to do it (acknowledging what it returns), :meth:`claim`
    on assignment (seeking where it says), and on revocation :meth:`checkpoint` (acknowledging
    what it returns) before it drops the partitions from the state.
    """

    def __init__(
        self,
        state: OnlineState,
        sender: Sender,
        metrics: EngineMetrics,
        every_outcomes: int,
        interval_s: float,
        store_timeout_s: float = 5.0,
        max_outage_s: float = 600.0,
        outbox: Publisher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.sender = sender
        self.outbox = outbox
        self._metrics = metrics
        self._every = every_outcomes
        self._interval_s = interval_s
        self._timeout_s = store_timeout_s
        self._max_outage_s = max_outage_s
        self._clock = clock
        self.backoff = Backoff(clock=clock)
        self._since = 0
        self._last = clock()
        self.last_error: str | None = None

    # -- cadence ---------------------------------------------------------------------------

    def applied(self, count: int) -> None:
        """``count`` more records took effect in the state (learned or dead-lettered)."""
        self._since += count

    @property
    def store_available(self) -> bool:
        """False while checkpoints or claims are failing (learning should pause)."""
        return self.backoff.failures == 0

    def due(self) -> bool:
        """Whether a checkpoint should run now (cadence reached, or a retry is due)."""
        if not self.backoff.ready:
            return False
        if self.backoff.failures:
            return True
        waiting = self._since or self.state.has_changes or self.state.has_outbox
        if not waiting:
            return False
        return self._since >= self._every or self._clock() - self._last >= self._interval_s

    def outage_exceeded(self) -> bool:
        """Whether the store has been unreachable for longer than the configured limit."""
        return self.backoff.failing_for_s > self._max_outage_s

    # -- the checkpoint ----------------------------------------------------------------------

    async def checkpoint(self) -> CheckpointResult:
        """Run the protocol once (``stored`` is False when the store was unreachable).

        Raises :class:`OutputsLostError` when earlier sends failed: the engine must then reset to
        the last checkpoint (:meth:`reset`) instead of acknowledging anything.
        """
        started = time.perf_counter()
        mark = self.sender.mark()
        snapshot = self.state.snapshot()
        try:
            await self.sender.flush(mark)
        except Exception as exc:
            self.state.abandon(snapshot)
            self._metrics.dependency_errors.labels("kafka", "send").inc()
            raise OutputsLostError(f"sends not confirmed by the broker: {exc!r}") from exc
        try:
            fenced = await asyncio.wait_for(self.state.write(snapshot), self._timeout_s)
        except STORE_ERRORS as exc:
            self.state.abandon(snapshot)
            self._store_failed("checkpoint", exc)
            return CheckpointResult(stored=False)
        self._store_ok()
        self._since = 0
        self._last = self._clock()
        if self.outbox is not None:
            try:
                await self.outbox.flush(self.state, self.state.due_outbox(snapshot))
            except Exception as exc:  # entries stay checkpointed; the next checkpoint retries
                self._metrics.dependency_errors.labels("kafka", "outbox").inc()
                log.warning("outbox not published; will retry", extra={"error": repr(exc)})
        metrics = self._metrics
        metrics.checkpoints.inc()
        metrics.checkpoint_seconds.observe(time.perf_counter() - started)
        metrics.loaded_keys.set(self.state.key_count)
        if fenced:
            metrics.fenced_partitions.inc(len(fenced))
        committed = {
            p: m.checkpointed_offset
            for p, m in self.state.partitions.items()
            if m.checkpointed_offset >= 0
        }
        return CheckpointResult(committed=committed, fenced=fenced)

    def _store_failed(self, operation: str, exc: BaseException, subject: str = "") -> None:
        """``operation`` (checkpoint, claim) is the metric's label; ``subject`` says of what."""
        delay = self.backoff.failed()
        self.last_error = f"{operation}{subject}: {type(exc).__name__}: {exc}"
        self._metrics.store_failures.inc()
        self._metrics.dependency_errors.labels("redis", operation).inc()
        self._metrics.store_available.set(0)
        log.warning(
            "state store unreachable; learning paused, scoring goes on",
            extra={
                "error": self.last_error,
                "retry_in_s": round(delay, 2),
                "failing_for_s": round(self.backoff.failing_for_s, 1),
            },
        )

    def _store_ok(self) -> None:
        if self.backoff.failures:
            log.warning(
                "state store reachable again; learning resumes",
                extra={"was_failing_for_s": round(self.backoff.failing_for_s, 1)},
            )
        self.backoff.succeeded()
        self.last_error = None
        self._metrics.store_available.set(1)

    # -- assignment --------------------------------------------------------------------------

    async def claim(self, partitions: Iterable[int]) -> tuple[dict[int, int], set[int]]:
        """Claim partitions from the store; returns (resume offset per claimed, not claimed).

        The resume offset is the stored applied offset + 1 (0 when nothing is stored): the
        consumer must seek there. Partitions that could not be claimed (store unreachable)
        are returned so the engine keeps them paused and tries again.
        """
        resume: dict[int, int] = {}
        missing: set[int] = set()
        for partition in partitions:
            try:
                loaded = await asyncio.wait_for(self.state.ensure(partition), self._timeout_s)
            except STORE_ERRORS as exc:
                self._store_failed("claim", exc, f" of partition {partition}")
                missing.add(partition)
                continue
            if loaded is None:  # not assigned to us (any more), or blocked after a fence
                missing.add(partition)
                continue
            resume[partition] = loaded.applied_offset + 1
        if resume and not missing:
            self._store_ok()
        return resume, missing

    def reset(self) -> None:
        """Back to the last checkpoint: forget all in-memory state and unconfirmed sends."""
        self.sender.discard()
        self.state.drop(list(self.state.partitions))
        self._since = 0


class Admission(enum.Enum):
    """What to do with a record of a partition that was just claimed."""

    PASS = "pass"  # the consumer reads from (or before) the resume point
    DROP = "drop"  # fetched from the wrong place: ignore it (it comes again)
    RESEEK = "reseek"  # ignore it and seek to the resume point again


@dataclass
class _Pending:
    resume: int
    seeks: int
    last_seek: float


class ResumeGuard:
    """Holds records back after a claim until the consumer reads from the resume point.

    After a claim the consumer is sought to the stored applied offset + 1, but a client may
    also reposition it by itself (Faust seeks to Kafka's committed offset during a rebalance,
    and records fetched before the seek may still be queued). A record at or before the resume
    point proves the position: everything from there on is in order (earlier ones are replays
    the learner skips). A record beyond it must not be learned (the ones in between would be
    skipped): it is dropped and the consumer sought again, at most every ``min_interval_s``.
    After ``max_seeks`` seeks that all lead beyond the resume point, the gap is real (a
    compacted or transactional topic has no record there) and the record passes, logged.
    """

    def __init__(
        self,
        min_interval_s: float = 0.2,
        max_seeks: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pending: dict[int, _Pending] = {}
        self._interval = min_interval_s
        self._max_seeks = max_seeks
        self._clock = clock

    def expect(self, partition: int, resume: int) -> None:
        """The consumer was just sought to ``resume`` for ``partition``."""
        self._pending[partition] = _Pending(resume, 1, self._clock())

    def sought(self, partition: int) -> None:
        """The caller sought ``partition`` again after a :attr:`Admission.RESEEK`."""
        pending = self._pending.get(partition)
        if pending is not None:
            pending.seeks += 1
            pending.last_seek = self._clock()

    def resume_point(self, partition: int) -> int | None:
        """Where ``partition`` must be read from, while that is not yet confirmed."""
        pending = self._pending.get(partition)
        return None if pending is None else pending.resume

    def holds(self, partition: int) -> bool:
        """Whether records of ``partition`` are still checked (a claim is not yet confirmed)."""
        return partition in self._pending

    def admit(self, partition: int, offset: int) -> Admission:
        """Whether a record of ``partition`` at ``offset`` may be learned."""
        pending = self._pending.get(partition)
        if pending is None:
            return Admission.PASS
        if offset <= pending.resume:
            del self._pending[partition]
            return Admission.PASS
        if pending.seeks >= self._max_seeks:
            del self._pending[partition]
            log.warning(
                "no record at the resume point; continuing after the gap",
                extra={"partition": partition, "resume": pending.resume, "first": offset},
            )
            return Admission.PASS
        if self._clock() - pending.last_seek >= self._interval:
            return Admission.RESEEK
        return Admission.DROP

    def forget(self, partitions: Iterable[int] | None = None) -> None:
        """Stop guarding partitions (all when None): revoked or reset."""
        if partitions is None:
            self._pending.clear()
        for partition in partitions or ():
            self._pending.pop(partition, None)
