"""Signals sent in batches land where Kafka's default partitioner would put their key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from streams.partitioning import partition_for


def test_partition_for_matches_kafkas_default_partitioner():
    default = DefaultPartitioner()
    for count in (1, 2, 3, 4, 7, 12):
        partitions = list(range(count))
        for i in range(500):
            key = f"SYM{i:03d}".encode()
            assert partition_for(key, partitions) == default(key, partitions, partitions)


def test_partition_for_matches_the_java_clients_murmur2():
    # Kafka's own test vector (org.apache.kafka.common.utils.UtilsTest): murmur2("21") is
    # -973932308, so on 1,000 partitions the key lands on (h & 0x7fffffff) % 1000.
    assert partition_for(b"21", list(range(1000))) == (-973932308 & 0x7FFFFFFF) % 1000


def test_records_without_a_key_go_to_some_partition():
    assert partition_for(None, [0, 1, 2]) in {0, 1, 2}
