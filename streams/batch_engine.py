"""The batch engine: one aiokafka consumer feeds the learner and the scorer whole fetches.

An alternative to the Faust agents (``processing.engine = batch``), for throughput and tail
latency: Faust's per-event stream machinery cost ~150 us an event in ``bench/``, more than the
work itself. Same processors, state, checkpoints and outbox as the agents; what differs is how
records arrive and how exactly-once is kept:

* one consumer, subscribed to ``trade-outcomes`` and ``signal-requests`` with the range
  assignor, so a worker gets the same partition numbers of both (co-partitioned);
* on assignment the worker claims each outcome partition in Redis and *seeks* to the applied
  offset + 1 (the beginning when Redis has nothing), so correctness does not depend on Kafka's
  committed offsets at all; they are still committed (after checkpoints / signal delivery) so
  lag tools work;
* on revocation it checkpoints, publishes the outbox and forgets the partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import OffsetAndMetadata

from config import Settings
from streams.engine import Engine
from streams.outbox import OutboxFlusher
from streams.records import InputRecord, OutgoingRecord

log = logging.getLogger(__name__)


class AiokafkaSender:
    """Sends records in per-partition batches with an aiokafka producer; delivery is awaited in
    :meth:`flush`.

    Records are grouped by the partition Kafka's default partitioner picks for their key (the
    same placement as ``producer.send``) and handed over with ``create_batch``/``send_batch``:
    ``bench/`` measured per-record ``send`` as the largest cost of producing signals. Sends are
    pipelined: the loop goes on fetching and scoring while earlier signals are in flight, and
    every delivery report is awaited before the offsets that produced them are committed (see
    ``BatchEngine._checkpoint``), which is what at-least-once output needs.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._in_flight: list[asyncio.Future] = []

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        """Queue the records, in order per partition (returns once they are in the producer)."""
        groups: dict[tuple[str, int], list[OutgoingRecord]] = {}
        partitions: dict[str, list[int]] = {}
        for record in records:
            if record.topic not in partitions:
                partitions[record.topic] = sorted(await self._producer.partitions_for(record.topic))
            partition = partition_for(record.key, partitions[record.topic])
            groups.setdefault((record.topic, partition), []).append(record)
        for (topic, partition), group in groups.items():
            batch = self._producer.create_batch()
            for record in group:
                if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                    await self._send_batch(batch, topic, partition)
                    batch = self._producer.create_batch()
                    if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                        raise ValueError(f"a record for {topic} exceeds the producer's batch size")
            await self._send_batch(batch, topic, partition)

    async def _send_batch(self, batch: BatchBuilder, topic: str, partition: int) -> None:
        future = await self._producer.send_batch(batch, topic, partition=partition)
        self._in_flight.append(future)

    async def flush(self) -> None:
        """Wait until every record sent so far is acknowledged by the broker."""
        in_flight, self._in_flight = self._in_flight, []
        if in_flight:
            await asyncio.gather(*in_flight)


def partition_for(key: bytes | None, partitions: Sequence[int]) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as the Java client)."""
    if key is None:
        return _PARTITIONER(None, list(partitions), list(partitions))
    return partitions[_murmur_index(key, len(partitions))]


@functools.lru_cache(maxsize=65_536)
def _murmur_index(key: bytes, count: int) -> int:
    # Pure-Python murmur2 costs microseconds; model keys repeat, so it is cached.
    return (murmur2(key) & 0x7FFFFFFF) % count


_PARTITIONER = DefaultPartitioner()


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, engine: BatchEngine) -> None:
        self._engine = engine

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._engine.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._engine.on_assigned(assigned)


class BatchEngine:
    """Runs the learner and the scorer over batches fetched by one consumer."""

    def __init__(self, engine: Engine, settings: Settings, bootstrap_servers: str) -> None:
        self.engine = engine
        self._settings = settings
        self._bootstrap = bootstrap_servers
        topics = engine.topics
        self._outcomes, self._requests = topics.outcomes, topics.requests
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.sender: AiokafkaSender | None = None
        self.outbox: OutboxFlusher | None = None
        self._task: asyncio.Task | None = None
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._request_offsets: dict[TopicPartition, int] = {}
        self._stopping = False

    def is_assigned(self, partition: int) -> bool:
        """Whether the group gave this worker the outcome partition."""
        if self._consumer is None:
            return False
        return TopicPartition(self._outcomes, partition) in self._consumer.assignment()

    async def start(self, outbox_topics: dict[str, str]) -> None:
        """Connect, join the group and start the loop."""
        kafka = self._settings.kafka
        processing = self._settings.processing
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, linger_ms=1, acks="all"
        )
        await self._producer.start()
        self.sender = AiokafkaSender(self._producer)
        self.outbox = OutboxFlusher(
            self.sender,
            outbox_topics,
            self._bootstrap,
            self.engine.redis,
            self.engine.keys,
            self._settings.drift.retrain_dedupe_s,
        )
        from aiokafka.coordinator.assignors.range import RangePartitionAssignor

        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=kafka.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=kafka.fetch_max_wait_ms,
            max_poll_records=max(processing.learn_batch, processing.score_batch),
            session_timeout_ms=int(kafka.session_timeout_s * 1000),
            heartbeat_interval_ms=int(kafka.heartbeat_interval_s * 1000),
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        await self._consumer.start()
        self._consumer.subscribe([self._outcomes, self._requests], listener=_Rebalance(self))
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop the loop, write a final checkpoint, commit and disconnect."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        async with self._lock:
            await self._checkpoint()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        wait_ms = self._settings.processing.max_wait_ms
        while not self._stopping:
            batches = await consumer.getmany(timeout_ms=wait_ms)
            outcomes: list[InputRecord] = []
            requests: list[InputRecord] = []
            for tp, records in batches.items():
                target = outcomes if tp.topic == self._outcomes else requests
                target.extend(InputRecord(r.partition, r.offset, r.key, r.value) for r in records)
                if tp.topic == self._requests and records:
                    self._request_offsets[tp] = records[-1].offset + 1
            async with self._lock:
                if outcomes:
                    await self._learn(outcomes)
                if requests:
                    result = await self.engine.scorer.score(requests)
                    assert self.sender is not None
                    await self.sender.send_all(result.outgoing)
                if self._checkpoint_due():
                    await self._checkpoint()

    async def _learn(self, records: list[InputRecord]) -> None:
        result = await self.engine.learner.process(records)
        assert self.sender is not None
        await self.sender.send_all(result.outgoing)
        self._since_checkpoint += len(result.applied)

    def _checkpoint_due(self) -> bool:
        checkpoint = self._settings.checkpoint
        elapsed = time.monotonic() - self._last_checkpoint >= checkpoint.interval_ms / 1000.0
        waiting = self._since_checkpoint or self._request_offsets or self.engine.state.has_outbox
        return bool(waiting) and (self._since_checkpoint >= checkpoint.every_outcomes or elapsed)

    async def _checkpoint(self) -> None:
        state = self.engine.state
        started = time.perf_counter()
        if self.sender is not None:
            await self.sender.flush()  # dead letters and signals are out before offsets move
        fenced = await state.checkpoint()
        if self.outbox is not None:
            await self.outbox.flush(state)
        offsets = {
            TopicPartition(self._outcomes, p): OffsetAndMetadata(m.checkpointed_offset + 1, "")
            for p, m in state.partitions.items()
            if m.checkpointed_offset >= 0 and p not in fenced
        }
        offsets.update({tp: OffsetAndMetadata(o, "") for tp, o in self._request_offsets.items()})
        if offsets and self._consumer is not None:
            with contextlib.suppress(Exception):  # informative only; Redis is the truth
                await self._consumer.commit(offsets)
        self._request_offsets.clear()
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        metrics = self.engine.metrics
        metrics.checkpoints.inc()
        metrics.checkpoint_seconds.observe(time.perf_counter() - started)
        metrics.loaded_keys.set(state.key_count)
        if fenced:
            metrics.fenced_partitions.inc(len(fenced))

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Checkpoint what we learned for partitions we lose, then forget them."""
        async with self._lock:
            await self._checkpoint()
            self.engine.state.drop(tp.partition for tp in revoked if tp.topic == self._outcomes)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Claim each new outcome partition and resume right after its applied offset."""
        consumer = self._consumer
        assert consumer is not None
        state = self.engine.state
        mine = [tp for tp in assigned if tp.topic == self._outcomes]
        state.unblock(tp.partition for tp in mine)
        for tp in mine:
            loaded = await state.ensure(tp.partition)
            if loaded is None:
                continue
            if loaded.applied_offset >= 0:
                consumer.seek(tp, loaded.applied_offset + 1)
            else:
                await consumer.seek_to_beginning(tp)
        log.info(
            "partitions assigned",
            extra={
                "outcomes": sorted(tp.partition for tp in mine),
                "requests": sorted(tp.partition for tp in assigned if tp.topic == self._requests),
            },
        )
