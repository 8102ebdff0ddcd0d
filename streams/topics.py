"""Topic names and layout, and creating/verifying topics on the broker (kafka-python admin)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from config import Settings
from streams.kafka_connection import KafkaConnection


class TopicLayoutError(RuntimeError):
    """Topics exist with a layout the engine cannot work with (e.g. partition counts differ)."""


@dataclass(frozen=True)
class TopicNames:
    """Every topic the engine reads or writes."""

    outcomes: str
    requests: str
    signals: str
    outcomes_dead_letter: str
    requests_dead_letter: str
    model_updates: str
    retrain_requests: str
    retrain_requests_dead_letter: str
    drift_alerts: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        """Names from the ``topics`` settings group."""
        topics = settings.topics
        return cls(
            outcomes=topics.outcomes,
            requests=topics.requests,
            signals=topics.signals,
            outcomes_dead_letter=topics.dead_letter(topics.outcomes),
            requests_dead_letter=topics.dead_letter(topics.requests),
            model_updates=topics.model_updates,
            retrain_requests=topics.retrain_requests,
            retrain_requests_dead_letter=topics.dead_letter(topics.retrain_requests),
            drift_alerts=topics.drift_alerts,
        )

    def data(self) -> tuple[str, ...]:
        """Topics keyed by model key, all with the configured partition count."""
        return (
            self.outcomes,
            self.requests,
            self.signals,
            self.outcomes_dead_letter,
            self.requests_dead_letter,
        )

    def control(self) -> tuple[str, ...]:
        """Low-volume, totally ordered topics with a single partition."""
        return (
            self.model_updates,
            self.retrain_requests,
            self.retrain_requests_dead_letter,
            self.drift_alerts,
        )


def ensure_topics_for(settings: Settings, kafka: KafkaConnection) -> TopicNames:
    """Create (or check) every topic the settings name; returns the names."""
    names = TopicNames.from_settings(settings)
    ensure_topics(
        kafka,
        names,
        settings.topics.partitions,
        settings.topics.replication_factor,
        topic_configs(settings, names),
    )
    return names


def topic_configs(settings: Settings, names: TopicNames) -> dict[str, dict[str, str]]:
    """Broker configs of the topics that need their own: the outcomes topic is the retrain
    source, so its retention comes from ``topics.outcomes_retention_days``.

    >>> from config import load_settings
    >>> settings = load_settings(environ={})
    >>> topic_configs(settings, TopicNames.from_settings(settings))
    {'trade-outcomes': {'retention.ms': '7776000000'}}
    """
    days = settings.topics.outcomes_retention_days
    if days is None:
        return {}
    return {names.outcomes: {"retention.ms": str(round(days * 86_400_000))}}


def ensure_topics(
    kafka: KafkaConnection,
    names: TopicNames,
    partitions: int,
    replication_factor: int,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Create missing topics (with ``configs`` per topic name); refuse inputs whose partition
    counts break co-partitioning. Configs apply at creation only: an existing topic keeps its
    own (change it with ``kafka-configs.sh --alter``)."""
    configs = configs or {}
    admin = KafkaAdminClient(**kafka.client_options(), client_id="streamlearn-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [(name, partitions) for name in names.data()]
        wanted += [(name, 1) for name in names.control()]
        missing = [
            NewTopic(n, p, replication_factor, topic_configs=dict(configs.get(n, {})))
            for n, p in wanted
            if n not in existing
        ]
        if missing:
            # Another process may create them first; that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        counts = partition_counts(admin, [names.outcomes, names.requests, names.signals])
    finally:
        admin.close()
    if len(set(counts.values())) != 1:
        raise TopicLayoutError(
            f"{names.outcomes}, {names.requests} and {names.signals} must have the same number "
            f"of partitions (co-partitioned by model key), found {counts}"
        )


def partition_counts(admin: KafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """Number of partitions of each topic, from the cluster metadata."""
    described = admin.describe_topics(topics)
    # kafka-python 3 names the field "name", 2.x "topic".
    return {entry.get("name", entry.get("topic")): len(entry["partitions"]) for entry in described}
