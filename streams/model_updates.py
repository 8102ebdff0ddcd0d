"""The ``model-updates`` topic: every registry change, published for ops and for the workers."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer

from models.registry import RegistryEvent
from streams.kafka_connection import KafkaConnection
from streams.messages import ModelUpdateMessage

log = logging.getLogger(__name__)

#: What a registry action is called on the topic.
EVENT_NAMES = {"activate": "activated", "rollback": "rolled_back", "stage": "staged"}


def model_update(
    event: str, version: str | None, by: str, reason: str, **details: Any
) -> dict[str, Any]:
    """A ``model-updates`` message (``event``: activated, rolled_back, staged, rejected,
    failed) with a fresh ``update_id`` (consumers deduplicate on it)."""
    return {
        "schema_version": ModelUpdateMessage.VERSION,
        "update_id": uuid.uuid4().hex,
        "event": event,
        "version": version,
        "by": by,
        "reason": reason,
        "at": time.time_ns() // 1_000_000,
        **details,
    }


def from_registry_event(event: RegistryEvent, **details: Any) -> dict[str, Any]:
    """The message announcing a registry change."""
    return model_update(
        EVENT_NAMES[event.action],
        event.version,
        event.by,
        event.reason,
        previous=event.previous,
        **details,
    )


class ModelUpdatePublisher:
    """Publishes ``model-updates`` messages (kafka-python), waiting for the broker's ack."""

    def __init__(self, kafka: KafkaConnection, topic: str) -> None:
        self._topic = topic
        self._producer = KafkaProducer(**kafka.client_options(), acks="all")

    def publish(self, message: dict[str, Any]) -> None:
        """Send one message and block until it is stored."""
        self._producer.send(self._topic, value=orjson.dumps(message)).get(timeout=30)

    def close(self) -> None:
        """Flush and close."""
        self._producer.close()


async def follow_model_updates(
    kafka: KafkaConnection, topic: str, on_update: Callable[[], Awaitable[None]]
) -> None:
    """Call ``on_update`` whenever a ``model-updates`` message arrives (runs until cancelled).

    Every worker reads every message (manual assignment, no consumer group). Where it starts
    does not matter for correctness: ``on_update`` re-reads the registry pointer, so an old
    message only causes a harmless re-check.
    """
    consumer = AIOKafkaConsumer(
        **kafka.client_options(),
        enable_auto_commit=False,
        auto_offset_reset="latest",
        group_id=None,
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])  # a control topic: one partition
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            if any(batches.values()):
                await on_update()
    except asyncio.CancelledError:
        raise
    finally:
        await consumer.stop()
