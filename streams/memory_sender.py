"""An in-memory twin of the senders (:class:`~streams.checkpointing.Sender`), for tests with
no broker: records are placed on partitions as Kafka's default partitioner would, and only a
flush delivers them, so a test sees exactly what a crash before the flush would lose."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from streams.partitioning import partition_for
from streams.records import OutgoingRecord


class MemorySender:
    """Topics as lists of ``(partition, key, value)``; ``fail`` makes flushes raise.

    >>> import asyncio
    >>> sender = MemorySender({"signals": 3})
    >>> asyncio.run(sender.send_all([OutgoingRecord("signals", b"k", b"v")]))
    >>> sender.delivered("signals"), asyncio.run(sender.flush()), sender.delivered("signals")
    ([], None, [(2, b'k', b'v')])
    """

    def __init__(self, partitions: Mapping[str, int] | None = None) -> None:
        self._partitions = dict(partitions or {})
        self._in_flight: list[OutgoingRecord] = []
        self._topics: dict[str, list[tuple[int, bytes | None, bytes]]] = defaultdict(list)
        self.fail = False

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        """Queue the records (delivered by :meth:`flush`)."""
        self._in_flight.extend(records)

    def mark(self) -> list[OutgoingRecord]:
        """Everything sent so far."""
        marked, self._in_flight = self._in_flight, []
        return marked

    async def flush(self, mark: list[OutgoingRecord] | None = None) -> None:
        """Deliver everything sent before ``mark`` (default: now); ``ConnectionError`` while
        :attr:`fail` is set (and the records stay undelivered)."""
        records = self.mark() if mark is None else mark
        if self.fail:
            self._in_flight = records + self._in_flight
            raise ConnectionError("broker unreachable (test)")
        for record in records:
            count = self._partitions.get(record.topic, 1)
            partition = partition_for(record.key, list(range(count)))
            self._topics[record.topic].append((partition, record.key, record.value))

    def discard(self) -> None:
        """Forget unconfirmed sends."""
        self._in_flight = []

    def add_topic(self, topic: str, partitions: int) -> None:
        """Give ``topic`` this many partitions (unknown topics have one)."""
        self._partitions[topic] = partitions

    def delivered(self, topic: str) -> list[tuple[int, bytes | None, bytes]]:
        """What reached ``topic``, in delivery order."""
        return list(self._topics.get(topic, []))
