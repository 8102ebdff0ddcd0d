"""Outcome producers: trade outcomes to ``trade-outcomes``, keyed and placed as the workers
expect (record key = model key, partition by Kafka's default murmur2 partitioner, computed
here with the workers' own function rather than left to the client library's default, which
is CRC32 in librdkafka)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from kafka import KafkaProducer

from streams.client.endpoint import Endpoint, partitions_of
from streams.client.records import outcome, outcome_record
from streams.partitioning import partition_for


class _OutcomeTarget:
    """What both producers share: the topic, its partitions, and each outcome's record."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._topic = endpoint.topics.outcomes
        self._partitions: list[int] = []

    def _record(self, message: Mapping[str, Any]) -> tuple[bytes, bytes, int]:
        """``(key, value, partition)`` of an outcome, checked against the workers' contract."""
        key, value = outcome_record(message, self.endpoint.spec)
        return key, value, partition_for(key, self._partitions)


class OutcomeProducer(_OutcomeTarget):
    """Sends trade outcomes (kafka-python, blocking). Invalid outcomes raise
    :class:`~streams.contracts.ContractError` before anything is sent::

        with OutcomeProducer(Endpoint.load()) as producer:
            producer.send("o-1", "AAPL", features, label=1, realized_rr=1.4)
    """

    def __init__(self, endpoint: Endpoint, linger_ms: int = 5) -> None:
        super().__init__(endpoint)
        self._producer = KafkaProducer(
            **endpoint.kafka.client_options(), acks="all", linger_ms=linger_ms
        )
        self._partitions = partitions_of(self._topic, self._producer.partitions_for(self._topic))

    def send(
        self,
        outcome_id: str,
        key: str,
        features: Mapping[str, float],
        label: int,
        realized_rr: float | None = None,
        ts: int | None = None,
        **fields: Any,
    ) -> None:
        """Queue one outcome (see :func:`~streams.client.records.outcome`)."""
        self.send_message(outcome(outcome_id, key, features, label, realized_rr, ts, **fields))

    def send_message(self, message: Mapping[str, Any]) -> None:
        """Queue one outcome given as a dict of its fields."""
        key, value, partition = self._record(message)
        self._producer.send(self._topic, key=key, value=value, partition=partition)

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every queued outcome is stored by the broker."""
        self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        """Flush and close."""
        self._producer.close()

    def __enter__(self) -> OutcomeProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncOutcomeProducer(_OutcomeTarget):
    """:class:`OutcomeProducer` for asyncio (aiokafka): ``await producer.send(...)`` returns
    once the broker has stored the outcome."""

    def __init__(self, endpoint: Endpoint, linger_ms: int = 5) -> None:
        super().__init__(endpoint)
        self._producer = AIOKafkaProducer(
            **endpoint.kafka.client_options(), acks="all", linger_ms=linger_ms
        )

    async def start(self) -> None:
        """Connect and read the topic's partitions."""
        await self._producer.start()
        partitions = await self._producer.partitions_for(self._topic)
        self._partitions = partitions_of(self._topic, partitions)

    async def send(
        self,
        outcome_id: str,
        key: str,
        features: Mapping[str, float],
        label: int,
        realized_rr: float | None = None,
        ts: int | None = None,
        **fields: Any,
    ) -> None:
        """Send one outcome and wait until the broker stored it."""
        await self.send_message(
            outcome(outcome_id, key, features, label, realized_rr, ts, **fields)
        )

    async def send_message(self, message: Mapping[str, Any]) -> None:
        """Send one outcome given as a dict of its fields; wait until it is stored."""
        key, value, partition = self._record(message)
        await self._producer.send_and_wait(self._topic, value, key=key, partition=partition)

    async def close(self) -> None:
        """Flush and close."""
        await self._producer.stop()

    async def __aenter__(self) -> AsyncOutcomeProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
