"""Where a client connects and what the workers expect of its messages, from the same settings
as the workers (``STREAMLEARN_*`` environment variables or a YAML file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import Settings, load_settings
from streams.contracts import ContractSpec
from streams.kafka_connection import KafkaConnection
from streams.partitioning import partition_for
from streams.topics import TopicNames


class ClientError(RuntimeError):
    """The client cannot do what was asked (no broker configured, a topic missing, ...)."""


@dataclass(frozen=True)
class Endpoint:
    """A Kafka connection (address, TLS, SASL), the topic names and the message contract: what
    a producer or signal client shares with the workers it talks to."""

    kafka: KafkaConnection
    topics: TopicNames
    spec: ContractSpec

    @classmethod
    def from_settings(cls, settings: Settings, bootstrap_servers: str | None = None) -> Endpoint:
        """The endpoint the settings describe (``bootstrap_servers`` overrides
        ``kafka.bootstrap_servers``; one of them is needed)."""
        bootstrap = bootstrap_servers or settings.kafka.bootstrap_servers
        if not bootstrap:
            raise ClientError(
                "no Kafka address: set KAFKA_BOOTSTRAP_SERVERS or pass bootstrap_servers"
            )
        limits = settings.limits
        spec = ContractSpec(
            features=settings.model.features,
            key_field=settings.model.key_field,
            max_abs_feature=limits.max_abs_feature,
            max_key_bytes=limits.max_key_bytes,
            max_value_bytes=limits.max_value_bytes,
        )
        return cls(
            KafkaConnection.from_settings(settings.kafka, bootstrap),
            TopicNames.from_settings(settings),
            spec,
        )

    @classmethod
    def load(
        cls,
        bootstrap_servers: str | None = None,
        config_file: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Endpoint:
        """The endpoint of the settings in the environment (and ``config_file``), as the
        workers load them."""
        return cls.from_settings(load_settings(config_file, environ), bootstrap_servers)

    def record_key(self, message: Mapping[str, Any]) -> bytes:
        """The record key the workers expect: the message's model key."""
        return self.spec.model_key(message).encode()


def placed(key: bytes, partitions: set[int] | list[int] | None, topic: str) -> int:
    """The partition of ``key`` by Kafka's default partitioner (murmur2), as the workers place
    and check it; raises :class:`ClientError` when ``topic`` has no known partitions."""
    if not partitions:
        raise ClientError(f"topic {topic!r} does not exist or has no partitions")
    return partition_for(key, sorted(partitions))
