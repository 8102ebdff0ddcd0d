"""Where a client connects and what the workers expect of its messages, from the same settings
as the workers (``STREAMLEARN_*`` environment variables or a YAML file)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from config import Settings, load_settings
from streams.contracts import ContractSpec
from streams.kafka_connection import KafkaConnection
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
        return cls(
            KafkaConnection.from_settings(settings.kafka, bootstrap),
            TopicNames.from_settings(settings),
            ContractSpec.from_settings(settings),
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


def partitions_of(topic: str, partitions: Iterable[int] | None) -> list[int]:
    """A topic's partitions in order, as :func:`partition_for` takes them (read once per
    client); raises :class:`ClientError` when the topic has none."""
    if not partitions:
        raise ClientError(f"topic {topic!r} does not exist or has no partitions")
    return sorted(partitions)
