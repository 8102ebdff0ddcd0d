"""The ``retrain-requests`` topic: enqueueing retrains, and reading them once, in order."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaProducer

from models.coordination import RetrainerState
from streams.contracts import (
    ContractError,
    RetrainRequest,
    decode_retrain_request,
    encode_dead_letter,
)
from streams.kafka_connection import KafkaConnection
from streams.messages import RetrainRequestMessage
from streams.reader import TopicReader


def retrain_request(
    requested_by: str,
    reason: str,
    window_outcomes: int | None = None,
    window_days: float | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """A new ``retrain-requests`` message with a fresh id."""
    return {
        "schema_version": RetrainRequestMessage.VERSION,
        "request_id": uuid.uuid4().hex,
        "requested_by": requested_by,
        "reason": reason,
        "ts": time.time_ns() // 1_000_000,
        "window_outcomes": window_outcomes,
        "window_days": window_days,
        "force": force,
    }


def enqueue_retrain(kafka: KafkaConnection, topic: str, message: dict[str, Any]) -> None:
    """Publish a retrain request and wait until the broker has stored it."""
    producer = KafkaProducer(**kafka.client_options(), acks="all")
    try:
        producer.send(topic, value=orjson.dumps(message)).get(timeout=30)
    finally:
        producer.close()


@dataclass
class RequestBatch:
    """Requests read since the last commit, the malformed ones, and where to commit to."""

    requests: list[RetrainRequest] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, ContractError, int]] = field(default_factory=list)
    next_offset: int = 0


class RetrainRequestQueue:
    """Reads ``retrain-requests`` (one partition) from the offset committed in Redis.

    Manual assignment with kafka-python (no consumer group), the committed offset kept in the
    retrainer's state (Redis in production); the retrainer commits after acting on a batch, so
    a crash mid-retrain repeats the retrain instead of losing the request.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        dead_letter_topic: str,
        state: RetrainerState,
    ) -> None:
        self._state = state
        self._topic = topic
        self._dead_letter_topic = dead_letter_topic
        self._reader = TopicReader(kafka, topic)
        self._producer = KafkaProducer(**kafka.client_options(), acks="all")
        self._reader.seek({0: self.committed()})

    def committed(self) -> int:
        """Next offset to read, as committed."""
        return self._state.committed_offset()

    def poll(self) -> RequestBatch:
        """Everything available now (empty when nothing arrived)."""
        batch = RequestBatch(next_offset=self.committed())
        for record in self._reader.poll(timeout_ms=200):
            try:
                batch.requests.append(decode_retrain_request(record.value))
            except ContractError as exc:
                batch.dead_letters.append((record.value, exc, record.offset))
            batch.next_offset = max(batch.next_offset, record.offset + 1)
        for value, error, offset in batch.dead_letters:
            letter = encode_dead_letter(
                value,
                None,
                error.reason,
                self._topic,
                0,
                offset,
                time.time_ns() // 1_000_000,
                kind=error.kind,
            )
            self._producer.send(self._dead_letter_topic, value=letter).get(timeout=30)
        return batch

    def enqueue(self, message: dict[str, Any]) -> None:
        """Publish a retrain request (a trigger's) on this queue's topic; returns once the
        broker stored it."""
        self._producer.send(self._topic, value=orjson.dumps(message)).get(timeout=30)

    def commit(self, next_offset: int) -> None:
        """Remember that everything before ``next_offset`` was acted on."""
        self._state.commit_offset(next_offset)

    def close(self) -> None:
        """Close the reader and producer."""
        self._reader.close()
        self._producer.close()
