"""The sender (publisher) contract, on every adapter: the aiokafka sender (default engine), the
Faust producer sender (agents engine) and the in-memory twin.

What a checkpoint relies on: after ``flush(mark)`` every record sent before the mark is on its
topic, exactly once, on the partition Kafka's default partitioner gives its key, in send order
within a partition; an empty send or flush is harmless.
"""

from __future__ import annotations

from streams.partitioning import partition_for
from streams.records import OutgoingRecord
from tests.contract.backends import SenderBackend

PARTITIONS = 3


def _records(topic: str, n: int, size: int = 16) -> list[OutgoingRecord]:
    return [
        OutgoingRecord(topic, f"key-{i % 17}".encode(), f"{i:08d}".encode().ljust(size, b"."))
        for i in range(n)
    ]


def _check_placed(sent: list[OutgoingRecord], delivered: list[tuple[int, bytes, bytes]]) -> None:
    assert sorted(v for _, _, v in delivered) == sorted(r.value for r in sent), "exactly once"
    for partition, key, _ in delivered:
        assert partition == partition_for(key, list(range(PARTITIONS)))
    for p in range(PARTITIONS):
        in_partition = [v for q, _, v in delivered if q == p]
        assert in_partition == [r.value for r in sent if r.value in set(in_partition)], "order"


def test_flushed_records_are_on_their_partitions_once_in_order(senders: SenderBackend):
    async def scenario():
        topic = await senders.topic(PARTITIONS)
        sender = await senders.sender()
        records = _records(topic, 200)
        await sender.send_all(records[:120])
        await sender.send_all(records[120:])
        await sender.flush(sender.mark())
        _check_placed(records, await senders.delivered(topic))

    senders.run(scenario)


def test_a_mark_covers_what_was_sent_before_it(senders: SenderBackend):
    async def scenario():
        topic = await senders.topic(PARTITIONS)
        sender = await senders.sender()
        first, later = _records(topic, 30), _records(topic, 60)[30:]
        await sender.send_all(first)
        mark = sender.mark()
        await sender.send_all(later)
        await sender.flush(mark)
        delivered = {v for _, _, v in await senders.delivered(topic)}
        assert {r.value for r in first} <= delivered
        await sender.flush()
        _check_placed(first + later, await senders.delivered(topic))

    senders.run(scenario)


def test_empty_sends_and_flushes_are_harmless(senders: SenderBackend):
    async def scenario():
        topic = await senders.topic(PARTITIONS)
        sender = await senders.sender()
        await sender.send_all([])
        await sender.flush(sender.mark())
        await sender.flush()
        sender.discard()
        assert await senders.delivered(topic) == []

    senders.run(scenario)


def test_many_records_in_many_producer_batches_all_arrive(senders: SenderBackend):
    async def scenario():
        topic = await senders.topic(PARTITIONS)
        sender = await senders.sender()
        records = _records(topic, 3000, size=400)  # ~1.2 MB: several batches per partition
        await sender.send_all(records)
        await sender.flush()
        _check_placed(records, await senders.delivered(topic))

    senders.run(scenario)


def test_several_topics_in_one_send(senders: SenderBackend):
    async def scenario():
        a, b = await senders.topic(PARTITIONS), await senders.topic(PARTITIONS)
        sender = await senders.sender()
        records = [r for pair in zip(_records(a, 50), _records(b, 50), strict=True) for r in pair]
        await sender.send_all(records)
        await sender.flush()
        _check_placed([r for r in records if r.topic == a], await senders.delivered(a))
        _check_placed([r for r in records if r.topic == b], await senders.delivered(b))

    senders.run(scenario)
