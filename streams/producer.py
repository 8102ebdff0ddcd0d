"""Publishing trade outcomes and signal requests (kafka-python), keyed by model key, as-is (no
contract check: the demo and tests also send what the workers must refuse). Applications use
:mod:`streams.client`, which checks first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaProducer

from streams.contracts import ContractSpec, encode_message, record_key_of
from streams.kafka_connection import KafkaConnection
from streams.messages import SignalRequestMessage, TradeOutcomeMessage
from streams.topics import TopicNames


class MessageProducer:
    """Sends contract messages to the input topics, each keyed by its model key."""

    def __init__(self, kafka: KafkaConnection, topics: TopicNames, spec: ContractSpec) -> None:
        self._producer = KafkaProducer(
            **kafka.client_options(),
            linger_ms=5,
            batch_size=256 * 1024,
            acks="all",
        )
        self._topics = topics
        self._spec = spec

    def send_outcomes(self, outcomes: Iterable[Mapping[str, Any]]) -> int:
        """Queue trade outcomes; returns how many."""
        return self._send(self._topics.outcomes, outcomes, TradeOutcomeMessage.VERSION)

    def send_requests(self, requests: Iterable[Mapping[str, Any]]) -> int:
        """Queue signal requests; returns how many."""
        return self._send(self._topics.requests, requests, SignalRequestMessage.VERSION)

    def send_raw(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """Queue arbitrary bytes (for tests of the dead-letter path)."""
        self._producer.send(topic, key=key, value=value)

    def _send(self, topic: str, messages: Iterable[Mapping[str, Any]], version: int) -> int:
        count = 0
        for message in messages:
            value = encode_message({"schema_version": version, **message})
            self._producer.send(topic, key=record_key_of(message, self._spec), value=value)
            count += 1
        return count

    def flush(self) -> None:
        """Block until everything queued is acknowledged by the broker."""
        self._producer.flush()

    def close(self) -> None:
        """Flush and close."""
        self._producer.close()
