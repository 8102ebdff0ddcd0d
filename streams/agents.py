"""Faust agents: thin loops that batch events, delegate to the processors, send, then ack.

The checkpoint protocol is :mod:`streams.checkpointing` (shared with the aiokafka engine). The
resume point of an outcome partition is the applied offset stored in Redis with its state: on
every claim the consumer is sought there (Kafka's committed offset may be behind Redis, or
ahead of it after a Redis failover). Acks decide what Faust commits to Kafka, for lag tools.
Outputs (signals, dead letters) are confirmed before their inputs are acked or checkpointed
(at-least-once output; consumers dedupe signals by ``request_id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from config.settings import ProcessingSettings
from streams.checkpointing import Admission, Checkpointer, OutputsLostError, ResumeGuard
from streams.health import Health
from streams.learning import OutcomeLearner
from streams.records import InputRecord, OutgoingRecord
from streams.scoring import RequestScorer
from streams.telemetry import EngineMetrics

log = logging.getLogger(__name__)


class FaustSender:
    """:class:`Sender` over the Faust app's producer (one batch of futures per call)."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        """Queue every record, then wait for all delivery reports."""
        if not records:
            return
        producer = self._app.producer
        futures = [
            await producer.send(record.topic, record.key, record.value, None, None, None)
            for record in records
        ]
        await asyncio.gather(*futures)

    def mark(self) -> None:
        """Nothing is ever in flight after :meth:`send_all` returns."""
        return None

    async def flush(self, mark: None = None) -> None:
        """Nothing to wait for: :meth:`send_all` already awaited delivery."""

    def discard(self) -> None:
        """Nothing is kept."""


def to_record(event: Any) -> InputRecord:
    """The transport-neutral view of a Faust event (raw key and value bytes)."""
    message = event.message
    return InputRecord(message.partition, message.offset, message.key, message.value)


class Repositioner(Protocol):
    """Moves the outcome consumer of one partition to an offset (after a claim)."""

    async def __call__(self, partition: int, offset: int) -> None:
        """Seek; events fetched before this call returns must be ignored by the caller."""
        ...


class LearnerAgent:
    """Feeds outcome micro-batches to the learner; checkpoints via the shared protocol.

    Each outcome partition is claimed from Redis before its events are learned, and the
    consumer is repositioned at the stored applied offset + 1 (:class:`Repositioner`): events
    that arrived before that seek are stale and dropped unacknowledged (they come again). Events
    are acked only once a checkpoint containing their effect is in Redis. While Redis is
    unreachable this agent waits (learning paused: Faust stops fetching for it when its buffer
    is full) and retries with backoff; the scorer agent goes on. A step that fails (a send the
    broker did not confirm, a bug) resets to the last checkpoint.
    """

    LOOP = "learner-agent"

    def __init__(
        self,
        learner: OutcomeLearner,
        checkpointer: Checkpointer,
        processing: ProcessingSettings,
        reposition: Repositioner,
        health: Health,
        metrics: EngineMetrics,
    ) -> None:
        self._learner = learner
        self._checkpointer = checkpointer
        self._batch = processing.learn_batch
        self._within_s = processing.max_wait_ms / 1000.0
        self._reposition = reposition
        self._health = health
        self._metrics = metrics
        self._lock = asyncio.Lock()
        self._pending: list[tuple[Any, Any]] = []
        self._guard = ResumeGuard()
        self._assigned: set[int] = set()

    async def run(self, stream: Any) -> None:
        """The agent body: micro-batches of events, acked only after their checkpoint."""
        with _reported(self._health, self.LOOP):
            async for events in stream.noack_take(self._batch, within=self._within_s):
                await self.on_events(stream, events)

    async def on_events(self, stream: Any, events: Sequence[Any]) -> None:
        """Learn one micro-batch, send its dead letters, checkpoint if due."""
        async with self._lock:
            try:
                fresh = await self._current(events)
                records = [to_record(event) for event in fresh]
                result = await self._learner.process(records)
                await self._checkpointer.sender.send_all(result.outgoing)
            except Exception as exc:
                log.error("learner step failed; back to the last checkpoint", exc_info=exc)
                self._metrics.engine_resets.inc()
                self._reset()
                return
            applied = {(r.partition, r.offset) for r in result.applied}
            self._pending.extend(
                (stream, event)
                for event, record in zip(fresh, records, strict=True)
                if (record.partition, record.offset) in applied
            )
            self._checkpointer.applied(len(result.applied))
            if self._checkpointer.due():
                await self._checkpoint()

    async def _current(self, events: Sequence[Any]) -> list[Any]:
        """Events to learn now: of claimed partitions, read from their stored resume point
        (see :class:`~streams.checkpointing.ResumeGuard`)."""
        state = self._learner.state
        fresh = []
        for event in events:
            message = event.message
            partition = message.partition
            if partition not in state.partitions:
                if self._checkpointer.backoff.ready:
                    await self._claim(partition)
                continue  # fetched before the seek the claim made (or not claimed yet)
            admission = self._guard.admit(partition, message.offset)
            if admission is Admission.RESEEK:
                resume = self._guard.resume_point(partition)
                assert resume is not None
                log.info("reseeking", extra={"partition": partition, "offset": resume})
                await self._reposition(partition, resume)
                self._guard.sought(partition)
            if admission is Admission.PASS:
                fresh.append(event)
        return fresh

    async def _claim(self, partition: int) -> None:
        resume, _ = await self._checkpointer.claim([partition])
        if partition in resume:
            await self._reposition(partition, resume[partition])
            self._guard.expect(partition, resume[partition])

    async def claim_assigned(self, partitions: Iterable[int]) -> None:
        """On assignment: claim now (so requests find their online models) and reposition."""
        mine = set(partitions)
        async with self._lock:
            self._assigned |= mine
            self._learner.state.unblock(mine)
            await self._claim_missing()

    async def _claim_missing(self) -> None:
        for partition in sorted(self._assigned - set(self._learner.state.partitions)):
            if not self._checkpointer.backoff.ready:
                return
            await self._claim(partition)

    async def on_timer(self) -> None:
        """Checkpoint quiet streams; retry checkpoints and claims that failed (Redis down)."""
        self._health.beat(self.LOOP)
        async with self._lock:
            await self._claim_missing()
            if self._checkpointer.due():
                await self._checkpoint()

    async def on_revoked(self, partitions: Iterable[int]) -> None:
        """Write what was learned for partitions we are losing, then forget them."""
        revoked = set(partitions)
        if not revoked:
            return
        async with self._lock:
            self._assigned -= revoked
            await self._checkpoint()
            self._learner.state.drop(revoked)
            self._guard.forget(revoked)
            self._pending = [(s, e) for s, e in self._pending if e.message.partition not in revoked]

    async def on_shutdown(self) -> None:
        """Final checkpoint on a clean stop."""
        async with self._lock:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        try:
            result = await self._checkpointer.checkpoint()
        except OutputsLostError as exc:
            log.error("checkpoint outputs lost; back to the last checkpoint", exc_info=exc)
            self._reset()
            return
        if not result.stored:
            return  # kept in memory; due() says when to retry (learning waits meanwhile)
        committed = result.committed
        keep = []
        for stream, event in self._pending:
            message = event.message
            if message.offset <= committed.get(message.partition, -1):
                await stream.ack(event)
            elif message.partition in self._learner.state.partitions:
                keep.append((stream, event))
        self._pending = keep

    def _reset(self) -> None:
        """Forget in-memory work and unacked events; partitions are claimed again and sought."""
        self._checkpointer.reset()
        self._pending.clear()
        self._guard.forget()


class ScorerAgent:
    """Scores request micro-batches and acks them once their signals are confirmed.

    A batch whose signals cannot be sent (broker unreachable) is retried with backoff, in
    order, until it goes through: requests are never dropped and never crash the agent.
    """

    LOOP = "scorer-agent"

    def __init__(
        self,
        scorer: RequestScorer,
        sender: FaustSender,
        processing: ProcessingSettings,
        health: Health,
    ) -> None:
        self._scorer = scorer
        self._sender = sender
        self._batch = processing.score_batch
        self._within_s = processing.max_wait_ms / 1000.0
        self._health = health

    async def run(self, stream: Any) -> None:
        """The agent body."""
        with _reported(self._health, self.LOOP):
            async for events in stream.noack_take(self._batch, within=self._within_s):
                await self._score(stream, events)

    async def _score(self, stream: Any, events: Sequence[Any]) -> None:
        records = [to_record(event) for event in events]
        delay = 0.1
        while True:
            try:
                result = await self._scorer.score(records)
                await self._sender.send_all(result.outgoing)
                break
            except Exception as exc:
                log.warning("signals not sent; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)
        for event in events:
            await stream.ack(event)


@contextlib.contextmanager
def _reported(health: Health, loop: str) -> Iterator[None]:
    """Tell ``health`` when an agent body ends other than by cancellation (a dead agent)."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        health.stopped(loop, repr(exc))
        raise
