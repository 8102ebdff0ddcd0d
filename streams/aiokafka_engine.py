"""the aiokafka engine: one aiokafka consumer feeds the learner and the scorer whole fetches.

The default engine (``processing.engine = aiokafka``; the Faust agents are the other), for
throughput and tail latency: Faust's per-event stream machinery cost ~150 us an event in
``bench/``, more than the work itself. Same processors, state, checkpoints and outbox as the
agents; what differs is how records arrive and how exactly-once is kept:

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
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from config import Settings
from streams.checkpointing import Admission, Checkpointer, OutputsLostError, ResumeGuard
from streams.engine import Engine
from streams.kafka_connection import KafkaConnection
from streams.outbox import OutboxFlusher
from streams.partitioning import partition_for
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
    ``AiokafkaEngine._checkpoint``), which is what at-least-once output needs.
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

    def mark(self) -> list[asyncio.Future]:
        """Everything sent so far (to :meth:`flush` later); later sends are not included."""
        marked, self._in_flight = self._in_flight, []
        return marked

    async def flush(self, mark: list[asyncio.Future] | None = None) -> None:
        """Wait until everything sent before ``mark`` (default: now) is acknowledged."""
        in_flight = self.mark() if mark is None else mark
        if in_flight:
            await asyncio.gather(*in_flight)

    def discard(self) -> None:
        """Forget unconfirmed sends (after a reset they are produced again)."""
        for future in self._in_flight:
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: no "exception never retrieved" noise
        self._in_flight = []


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, engine: AiokafkaEngine) -> None:
        self._engine = engine

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._engine.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._engine.on_assigned(assigned)


class AiokafkaEngine:
    """Runs the learner and the scorer over batches fetched by one consumer.

    The loop is supervised: an error in a step (a send the broker did not confirm, a bug)
    resets the engine to its last checkpoint (state dropped and claimed again from Redis,
    consumer repositioned at the stored offsets) and the loop goes on; it never ends by
    itself, and ``health`` says if it stopped. A Redis outage pauses learning (outcome
    partitions paused) while scoring goes on with the models held; learning resumes when a
    checkpoint lands again. The protocol itself lives in :mod:`streams.checkpointing`.
    """

    LOOP = "aiokafka-engine"

    def __init__(self, engine: Engine, settings: Settings, kafka: KafkaConnection) -> None:
        self.engine = engine
        self._settings = settings
        self._kafka = kafka
        topics = engine.topics
        self._outcomes, self._requests = topics.outcomes, topics.requests
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.sender: AiokafkaSender | None = None
        self.outbox: OutboxFlusher | None = None
        self.checkpointer: Checkpointer | None = None
        self._task: asyncio.Task | None = None
        self._checkpoint_task: asyncio.Task | None = None
        self._request_next: dict[TopicPartition, int] = {}
        self._unclaimed: set[int] = set()
        self._learning_paused = False
        self._stopping = False
        self._failures = 0
        self._guard = ResumeGuard()

    def is_assigned(self, partition: int) -> bool:
        """Whether the group gave this worker the outcome partition."""
        if self._consumer is None:
            return False
        return TopicPartition(self._outcomes, partition) in self._consumer.assignment()

    async def start(self, outbox_topics: dict[str, str]) -> None:
        """Connect, join the group and start the supervised loop.

        If any step fails, what was started is stopped again before the error propagates (the
        caller retries start while the broker is unreachable).
        """
        try:
            await self._start(outbox_topics)
        except BaseException:
            for client in (self._consumer, self._producer):
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.stop()
            self._consumer = self._producer = None
            self.checkpointer = None
            raise

    async def _start(self, outbox_topics: dict[str, str]) -> None:
        kafka = self._settings.kafka
        processing = self._settings.processing
        self._producer = AIOKafkaProducer(
            **self._kafka.client_options(),
            linger_ms=1,
            acks="all",
            max_request_size=self._settings.limits.max_message_bytes + 4096,
        )
        await self._producer.start()
        self.sender = AiokafkaSender(self._producer)
        self.outbox = OutboxFlusher(
            self.sender,
            outbox_topics,
            self._kafka,
            self.engine.ports.retrain_guard,
            self._settings.drift.retrain_dedupe_s,
        )
        self.checkpointer = self.engine.checkpointer(self.sender, self.outbox)
        from aiokafka.coordinator.assignors.range import RangePartitionAssignor

        self._consumer = AIOKafkaConsumer(
            **self._kafka.client_options(),
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
        self.engine.health.beat(self.LOOP)
        self._task = asyncio.ensure_future(self._run())
        self._task.add_done_callback(self._loop_ended)

    def _loop_ended(self, task: asyncio.Task) -> None:
        if self._stopping:
            return
        reason = "cancelled" if task.cancelled() else repr(task.exception())
        log.error("aiokafka engine loop ended", extra={"reason": reason})
        self.engine.health.stopped(self.LOOP, reason)

    async def stop(self) -> None:
        """Finish the current step, write a final checkpoint, commit and disconnect.

        Nothing fetched is lost: the loop is not cancelled mid-step (it ends after the step it
        is in, which scores and sends what it fetched), and offsets are committed only for what
        was confirmed.
        """
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 30)
            except (TimeoutError, Exception):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        async with self._lock:
            with contextlib.suppress(Exception):
                await self._reap_checkpoint(wait=True)
                await self._checkpoint_and_commit()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._step()
                self._failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failures += 1
                delay = min(5.0, 0.1 * 2**self._failures)
                log.error(
                    "aiokafka engine step failed; back to the last checkpoint",
                    extra={"error": repr(exc), "retry_in_s": delay},
                )
                self.engine.metrics.engine_resets.inc()
                with contextlib.suppress(Exception):
                    async with self._lock:
                        await self._reset()
                await asyncio.sleep(delay)

    async def _step(self) -> None:
        consumer, sender, checkpointer = self._consumer, self.sender, self.checkpointer
        assert consumer is not None and sender is not None and checkpointer is not None
        self.engine.health.beat(self.LOOP)
        self._track_dropped()
        if self._unclaimed and checkpointer.backoff.ready:
            async with self._lock:
                await self._claim(self._unclaimed)
        batches = await consumer.getmany(timeout_ms=self._settings.processing.max_wait_ms)
        async with self._lock:
            outcomes: list[InputRecord] = []
            requests: list[InputRecord] = []
            last_request: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                if not records:
                    continue
                if tp.topic == self._requests:
                    requests.extend(_input(r) for r in records)
                    last_request[tp] = records[-1].offset + 1
                elif tp.partition not in self._unclaimed:  # else re-read after its claim
                    outcomes.extend(self._admitted(tp, records))
            if requests:
                result = await self.engine.scorer.score(requests)
                await sender.send_all(result.outgoing)
                self._request_next.update(last_request)
            if outcomes:
                learned = await self.engine.learner.process(outcomes)
                await sender.send_all(learned.outgoing)
                checkpointer.applied(len(learned.applied))
            await self._reap_checkpoint()
            if self._checkpoint_task is None and checkpointer.due():
                requests_done = dict(self._request_next)
                self._request_next.clear()
                self._checkpoint_task = asyncio.ensure_future(
                    self._checkpoint_and_commit(requests_done)
                )
            self._pause_learning(not checkpointer.store_available)
            if checkpointer.outage_exceeded():
                raise SystemExit(
                    f"state store unreachable for over {self._settings.redis.max_outage_s:.0f}s: "
                    f"{checkpointer.last_error}"
                )

    def _admitted(self, tp: TopicPartition, records: list[ConsumerRecord]) -> list[InputRecord]:
        """Records read from where the partition's state resumes (see ResumeGuard)."""
        if not self._guard.holds(tp.partition):  # the usual case: no claim to confirm
            return [_input(record) for record in records]
        admitted = []
        for record in records:
            admission = self._guard.admit(tp.partition, record.offset)
            if admission is Admission.RESEEK:
                resume = self._guard.resume_point(tp.partition)
                assert resume is not None and self._consumer is not None
                self._consumer.seek(tp, resume)
                self._guard.sought(tp.partition)
            if admission is Admission.PASS:
                admitted.append(_input(record))
        return admitted

    def _track_dropped(self) -> None:
        """Assigned partitions whose state was dropped (fenced) wait for a claim, paused."""
        consumer = self._consumer
        assert consumer is not None
        assigned = {tp.partition for tp in consumer.assignment() if tp.topic == self._outcomes}
        dropped = assigned - set(self.engine.state.partitions) - self._unclaimed
        if dropped:
            self._unclaimed |= dropped
            consumer.pause(*(TopicPartition(self._outcomes, p) for p in dropped))

    async def _reap_checkpoint(self, wait: bool = False) -> None:
        """Collect a finished background checkpoint (raising what it raised)."""
        task = self._checkpoint_task
        if task is None or not (wait or task.done()):
            return
        self._checkpoint_task = None
        await task

    async def _checkpoint_and_commit(
        self, requests: dict[TopicPartition, int] | None = None
    ) -> None:
        """Run the checkpoint protocol, then commit what it made safe (Kafka offsets)."""
        checkpointer, consumer = self.checkpointer, self._consumer
        assert checkpointer is not None and consumer is not None
        if requests is None:
            requests, self._request_next = dict(self._request_next), {}
        try:
            result = await checkpointer.checkpoint()
        except OutputsLostError:
            self._request_next = {**requests, **self._request_next}  # not confirmed
            raise
        assignment = consumer.assignment()
        offsets = {tp: OffsetAndMetadata(o, "") for tp, o in requests.items() if tp in assignment}
        offsets.update(
            {
                TopicPartition(self._outcomes, p): OffsetAndMetadata(o + 1, "")
                for p, o in result.committed.items()
                if TopicPartition(self._outcomes, p) in assignment
            }
        )
        if offsets:
            try:
                await consumer.commit(offsets)
            except Exception as exc:  # the next commit carries them; Redis is the truth
                self.engine.metrics.dependency_errors.labels("kafka", "commit").inc()
                log.info("offset commit failed", extra={"error": repr(exc)})

    def _pause_learning(self, pause: bool) -> None:
        """Stop (or resume) fetching outcomes while the state store is unreachable."""
        consumer = self._consumer
        if consumer is None or pause == self._learning_paused:
            return
        self._learning_paused = pause
        claimed = [
            TopicPartition(self._outcomes, p)
            for p in self.engine.state.partitions
            if TopicPartition(self._outcomes, p) in consumer.assignment()
        ]
        if pause:
            consumer.pause(*claimed)
        else:
            consumer.resume(*claimed)

    async def _claim(self, partitions: set[int]) -> None:
        """Claim outcome partitions and resume each right after its stored applied offset."""
        checkpointer, consumer = self.checkpointer, self._consumer
        assert checkpointer is not None and consumer is not None
        resume, _ = await checkpointer.claim(sorted(partitions))
        for partition, offset in resume.items():
            tp = TopicPartition(self._outcomes, partition)
            if tp not in consumer.assignment():
                continue
            consumer.seek(tp, offset)
            self._guard.expect(partition, offset)
            if not self._learning_paused:
                consumer.resume(tp)
            self._unclaimed.discard(partition)
        if resume:
            log.info("partitions claimed", extra={"resume_at": resume})

    async def _reset(self) -> None:
        """Back to the last checkpoint: forget unconfirmed work, re-read it from the broker."""
        consumer, checkpointer = self._consumer, self.checkpointer
        assert consumer is not None and checkpointer is not None
        task, self._checkpoint_task = self._checkpoint_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        checkpointer.reset()
        self._guard.forget()
        self._request_next.clear()
        assignment = consumer.assignment()
        outcomes = [tp for tp in assignment if tp.topic == self._outcomes]
        self._unclaimed |= {tp.partition for tp in outcomes}
        if outcomes:
            consumer.pause(*outcomes)
        requests = [tp for tp in assignment if tp.topic == self._requests]
        if requests:
            await consumer.seek_to_committed(*requests)  # unconfirmed signals are made again

    # -- rebalances --------------------------------------------------------------------------

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Checkpoint and commit what we learned and scored for partitions we lose."""
        if self.checkpointer is None:
            return
        async with self._lock:
            with contextlib.suppress(Exception):
                await self._reap_checkpoint(wait=True)
                await self._checkpoint_and_commit()
            lost = {tp.partition for tp in revoked if tp.topic == self._outcomes}
            self.engine.state.drop(lost)
            self._guard.forget(lost)
            self._unclaimed -= lost
            for tp in revoked:
                self._request_next.pop(tp, None)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Claim each new outcome partition in Redis; it stays paused until claimed."""
        consumer = self._consumer
        assert consumer is not None
        mine = {tp.partition for tp in assigned if tp.topic == self._outcomes}
        self.engine.placement.partitions = len(consumer.partitions_for_topic(self._requests) or ())
        self.engine.state.unblock(mine)
        new = mine - set(self.engine.state.partitions)
        self._unclaimed |= new
        if new:
            consumer.pause(*(TopicPartition(self._outcomes, p) for p in new))
            async with self._lock:
                await self._claim(new)
        log.info(
            "partitions assigned",
            extra={
                "outcomes": sorted(mine),
                "requests": sorted(tp.partition for tp in assigned if tp.topic == self._requests),
                "waiting_for_claim": sorted(self._unclaimed),
            },
        )

    def status(self) -> dict[str, object]:
        """Engine-level facts for ``/ready`` and ``/status``."""
        checkpointer, consumer = self.checkpointer, self._consumer
        highwaters, request_highwaters = {}, {}
        if consumer is not None:
            for partition in self.engine.state.partitions:
                highwaters[partition] = consumer.highwater(
                    TopicPartition(self._outcomes, partition)
                )
            for tp in consumer.assignment():
                if tp.topic == self._requests:
                    request_highwaters[tp.partition] = consumer.highwater(tp)
        return {
            "highwaters": highwaters,
            "request_highwaters": request_highwaters,
            "unclaimed_partitions": sorted(self._unclaimed),
            "learning_paused": self._learning_paused,
            "store_error": None if checkpointer is None else checkpointer.last_error,
        }


def _input(record: ConsumerRecord) -> InputRecord:
    return InputRecord(record.partition, record.offset, record.key, record.value)
