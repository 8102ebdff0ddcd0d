"""Faust agents: thin loops that batch events, delegate to the processors, send, then ack.

Acks decide what Faust commits to Kafka. The learner acks an outcome only after the checkpoint
that contains its effect is in Redis, so Kafka's committed offset never passes Redis's applied
offset: after a crash the worker re-reads from Kafka's commit and skips what Redis already has.
Outputs (signals, dead letters) are sent and confirmed before their inputs are acked or
checkpointed (at-least-once output; consumers dedupe signals by ``request_id``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from config.settings import CheckpointSettings, ProcessingSettings
from streams.learning import OutcomeLearner
from streams.records import InputRecord, OutgoingRecord
from streams.scoring import RequestScorer
from streams.telemetry import EngineMetrics

if TYPE_CHECKING:
    from streams.outbox import OutboxFlusher

log = logging.getLogger(__name__)


class Sender(Protocol):
    """Produces records; after :meth:`flush` returns, everything sent is acknowledged."""

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        """Send (a sender may return before delivery; see flush)."""
        ...

    async def flush(self) -> None:
        """Wait until everything sent so far is acknowledged by the broker."""
        ...


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

    async def flush(self) -> None:
        """Nothing to wait for: :meth:`send_all` already awaited delivery."""


def to_record(event: Any) -> InputRecord:
    """The transport-neutral view of a Faust event (raw key and value bytes)."""
    message = event.message
    return InputRecord(message.partition, message.offset, message.key, message.value)


class LearnerAgent:
    """Feeds outcome micro-batches to the learner and checkpoints every N outcomes or T ms."""

    def __init__(
        self,
        learner: OutcomeLearner,
        sender: Sender,
        checkpoint: CheckpointSettings,
        processing: ProcessingSettings,
        metrics: EngineMetrics,
        outbox: OutboxFlusher | None = None,
    ) -> None:
        self._learner = learner
        self._outbox = outbox
        self._sender = sender
        self._every = checkpoint.every_outcomes
        self._interval_s = checkpoint.interval_ms / 1000.0
        self._batch = processing.learn_batch
        self._within_s = processing.max_wait_ms / 1000.0
        self._metrics = metrics
        self._lock = asyncio.Lock()
        self._pending: list[tuple[Any, Any]] = []
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()

    async def run(self, stream: Any) -> None:
        """The agent body: micro-batches of events, acked only after their checkpoint."""
        async for events in stream.noack_take(self._batch, within=self._within_s):
            await self.on_events(stream, events)

    async def on_events(self, stream: Any, events: Sequence[Any]) -> None:
        """Learn one micro-batch, send its dead letters, checkpoint if due."""
        async with self._lock:
            records = [to_record(event) for event in events]
            result = await self._learner.process(records)
            await self._sender.send_all(result.outgoing)
            applied = {(r.partition, r.offset) for r in result.applied}
            self._pending.extend(
                (stream, event)
                for event, record in zip(events, records, strict=True)
                if (record.partition, record.offset) in applied
            )
            self._since_checkpoint += len(result.applied)
            if self._since_checkpoint >= self._every or self._interval_elapsed():
                await self._checkpoint()

    async def on_timer(self) -> None:
        """Checkpoint quiet streams: pending state is written once the interval passes."""
        async with self._lock:
            waiting = self._pending or self._learner.state.has_outbox
            if waiting and self._interval_elapsed():
                await self._checkpoint()

    async def on_revoked(self, partitions: Iterable[int]) -> None:
        """Write what was learned for partitions we are losing, then forget them."""
        revoked = set(partitions)
        if not revoked:
            return
        async with self._lock:
            await self._checkpoint()
            self._learner.state.drop(revoked)

    async def on_shutdown(self) -> None:
        """Final checkpoint on a clean stop."""
        async with self._lock:
            await self._checkpoint()

    def _interval_elapsed(self) -> bool:
        return time.monotonic() - self._last_checkpoint >= self._interval_s

    async def _checkpoint(self) -> None:
        started = time.perf_counter()
        fenced = await self._learner.state.checkpoint()
        for stream, event in self._pending:
            if event.message.partition not in fenced:
                await stream.ack(event)
        self._pending.clear()
        if self._outbox is not None:
            await self._outbox.flush(self._learner.state)
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._metrics.checkpoints.inc()
        self._metrics.checkpoint_seconds.observe(time.perf_counter() - started)
        self._metrics.loaded_keys.set(self._learner.state.key_count)
        if fenced:
            self._metrics.fenced_partitions.inc(len(fenced))


class ScorerAgent:
    """Scores request micro-batches and acks them once their signals are confirmed."""

    def __init__(
        self, scorer: RequestScorer, sender: Sender, processing: ProcessingSettings
    ) -> None:
        self._scorer = scorer
        self._sender = sender
        self._batch = processing.score_batch
        self._within_s = processing.max_wait_ms / 1000.0

    async def run(self, stream: Any) -> None:
        """The agent body."""
        async for events in stream.noack_take(self._batch, within=self._within_s):
            result = await self._scorer.score([to_record(event) for event in events])
            await self._sender.send_all(result.outgoing)
            for event in events:
                await stream.ack(event)
