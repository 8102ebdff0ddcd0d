"""Reading whole topics with kafka-python manual assignment (no consumer group).

End offsets come from the *fetch* high watermark, not from ListOffsets: some Kafka-compatible
brokers (the embedded tansu among them) answer ListOffsets wrongly, while fetch is right
everywhere. Used by ``train --from-topic``, ``status`` (lag), the demo and the tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from streams.kafka_connection import KafkaConnection


class TopicReadError(RuntimeError):
    """A topic could not be read (missing, or the broker did not answer in time)."""


class TopicReader:
    """Reads one topic's partitions from given offsets; tracks fetch high watermarks."""

    def __init__(self, kafka: KafkaConnection, topic: str, timeout_s: float = 30.0) -> None:
        self.topic = topic
        self._timeout_s = timeout_s
        self._kafka = kafka
        self._probes: dict[int, KafkaConsumer] = {}
        self._consumer = self._new_consumer()
        partitions = self._wait_for_partitions()
        self.partitions = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(self.partitions)

    def _new_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            **self._kafka.client_options(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            group_id=None,
            max_poll_records=5000,
            fetch_max_wait_ms=100,
        )

    def _wait_for_partitions(self) -> set[int]:
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            partitions = self._consumer.partitions_for_topic(self.topic)
            if partitions:
                return partitions
            time.sleep(0.1)
        raise TopicReadError(f"topic {self.topic!r} does not exist or has no partitions")

    def seek(self, offsets: Mapping[int, int] | None = None) -> None:
        """Position each partition at ``offsets[p]`` (default: the start, offset 0)."""
        for tp in self.partitions:
            self._consumer.seek(tp, (offsets or {}).get(tp.partition, 0))

    def high_watermarks(self) -> dict[int, int]:
        """Next offset to be written per partition, from a fresh fetch (positions unchanged).

        A consumer only refreshes its high watermarks when it fetches, so a short-lived probe
        consumer does one fetch per partition at this reader's positions.
        """
        probe = self._new_consumer()
        try:
            probe.assign(self.partitions)
            for tp in self.partitions:
                probe.seek(tp, self._consumer.position(tp))
            deadline = time.monotonic() + self._timeout_s
            while True:
                marks = {tp.partition: probe.highwater(tp) for tp in self.partitions}
                if all(mark is not None for mark in marks.values()):
                    return marks  # type: ignore[return-value]
                if time.monotonic() > deadline:
                    raise TopicReadError(f"no fetch response for {self.topic!r} within the timeout")
                probe.poll(timeout_ms=200, max_records=1, update_offsets=False)
        finally:
            probe.close()

    def records_at(
        self, partition: int, offset: int, max_records: int = 20
    ) -> list[ConsumerRecord]:
        """Up to ``max_records`` records of one partition from ``offset``.

        Uses a consumer of its own per partition (pausing partitions of a shared consumer
        upset fetch sessions on the embedded broker), so this reader's positions are untouched.
        """
        probe = self._probes.get(partition)
        if probe is None:
            probe = self._new_consumer()
            probe.assign([TopicPartition(self.topic, partition)])
            self._probes[partition] = probe
        target = TopicPartition(self.topic, partition)
        probe.seek(target, offset)
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            found = probe.poll(timeout_ms=200, max_records=max_records).get(target, [])
            if found:
                return found
            end = probe.highwater(target)
            if end is not None and offset >= end:
                return []
        raise TopicReadError(f"no fetch response for {self.topic!r}/{partition}")

    def poll(self, timeout_ms: int = 200) -> list[ConsumerRecord]:
        """Whatever is available now, in per-partition offset order."""
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        return [record for records in batches.values() for record in records]

    def read_to_end(self, ends: Mapping[int, int] | None = None) -> Iterator[ConsumerRecord]:
        """From the current positions up to ``ends`` (default: the high watermarks now)."""
        ends = dict(ends) if ends is not None else self.high_watermarks()
        positions = {tp.partition: self._consumer.position(tp) for tp in self.partitions}
        remaining = {p for p, end in ends.items() if positions[p] < end}
        deadline = time.monotonic() + self._timeout_s
        while remaining:
            records = self.poll()
            if records:
                deadline = time.monotonic() + self._timeout_s
            elif time.monotonic() > deadline:
                raise TopicReadError(f"reading {self.topic!r} stalled before its end")
            for record in records:
                if record.offset < ends[record.partition]:
                    yield record
            for partition in list(remaining):
                tp = TopicPartition(self.topic, partition)
                if self._consumer.position(tp) >= ends[partition]:
                    remaining.discard(partition)

    def close(self) -> None:
        """Close the consumers."""
        for probe in self._probes.values():
            probe.close()
        self._consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_topic(kafka: KafkaConnection, topic: str) -> list[ConsumerRecord]:
    """Every record of a topic, from offset 0 to the current end."""
    with TopicReader(kafka, topic) as reader:
        reader.seek()
        return list(reader.read_to_end())
