"""``streamlearn status``: what a running deployment holds, read from Redis and the broker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaAdminClient

from app.composition import active_version, kafka_connection, redis_connection, stored_state
from app.redis_connection import RedisConnection
from config import Settings
from models.codec import summary_of
from models.state_store import PartitionSnapshot, StateStore
from streams.kafka_connection import KafkaConnection
from streams.reader import TopicReader


class StatusError(RuntimeError):
    """Status cannot be read (nothing configured to inspect)."""


@dataclass
class DeploymentStatus:
    """A snapshot of one deployment."""

    active_batch_version: str | None
    partitions: dict[int, dict[str, int | None]] = field(default_factory=dict)
    requests: dict[int, dict[str, int | None]] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)


def committed_offsets(kafka: KafkaConnection, group: str, topic: str) -> dict[int, int]:
    """The consumer group's committed offsets of one topic (OffsetFetch, right on tansu too)."""
    admin = KafkaAdminClient(**kafka.client_options(), client_id="streamlearn-status")
    try:
        return group_offsets(admin, group, topic)
    finally:
        admin.close()


def group_offsets(admin: KafkaAdminClient, group: str, topic: str) -> dict[int, int]:
    """``group``'s committed offsets of ``topic`` per partition, on an open admin client."""
    offsets = admin.list_group_offsets(group).get(group, {})
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def learner_state(settings: Settings, redis: RedisConnection) -> dict[int, PartitionSnapshot]:
    """Every stored partition of the learner's state, read without claiming it."""
    async with stored_state(settings, redis) as store:
        return await snapshots_of(store)


async def snapshots_of(store: StateStore) -> dict[int, PartitionSnapshot]:
    """Every stored partition of a state store, read without claiming it."""
    return {p: await store.read(p) for p in await store.partitions()}


def read_status(
    settings: Settings, kafka: KafkaConnection, redis: RedisConnection
) -> DeploymentStatus:
    """Active version, per-partition applied offset / end / lag, and per-key summaries."""
    active = active_version(settings, redis)
    snapshots = asyncio.run(learner_state(settings, redis))
    with TopicReader(kafka, settings.topics.outcomes) as reader:
        ends = reader.high_watermarks()
    with TopicReader(kafka, settings.topics.requests) as reader:
        request_ends = reader.high_watermarks()
    committed = committed_offsets(kafka, settings.kafka.consumer_group, settings.topics.requests)
    status = DeploymentStatus(active_batch_version=active)
    for partition, end in sorted(request_ends.items()):
        done = committed.get(partition, 0)
        status.requests[partition] = {
            "committed": done,
            "end_offset": end,
            "lag": max(0, end - done),
        }
    for partition, end in sorted(ends.items()):
        snapshot = snapshots.get(partition)
        applied = snapshot.applied_offset if snapshot else -1
        status.partitions[partition] = {
            "applied_offset": applied,
            "end_offset": end,
            "lag": max(0, end - (applied + 1)),
            "keys": len(snapshot.states) if snapshot else 0,
        }
        if snapshot:
            for key, blob in snapshot.states.items():
                status.keys[key] = {"partition": partition, **summary_of(blob)}
    return status


def render(status: DeploymentStatus) -> str:
    """Human-readable tables."""
    lines = [f"active batch model: {status.active_batch_version or '(none)'}", ""]
    lines.append("trade outcomes (applied = last offset whose effect is in Redis)")
    lines.append(f"{'partition':>9} {'applied':>10} {'end':>10} {'lag':>8} {'keys':>6}")
    for p, row in status.partitions.items():
        lines.append(
            f"{p:>9} {row['applied_offset']:>10} {row['end_offset']:>10} {row['lag']:>8} "
            f"{row['keys']:>6}"
        )
    lines += ["", "signal requests (committed by the consumer group)"]
    lines.append(f"{'partition':>9} {'committed':>10} {'end':>10} {'lag':>8}")
    for p, row in status.requests.items():
        lines.append(f"{p:>9} {row['committed']:>10} {row['end_offset']:>10} {row['lag']:>8}")
    lines += [
        "",
        f"{'key':<20} {'updates':>8} {'acc online':>10} {'acc batch':>10} {'acc blend':>10}",
    ]
    for key, summary in sorted(status.keys.items()):
        metrics = summary["metrics"]
        accs = [_pct(metrics[s]["accuracy"]) for s in ("online", "batch", "blend")]
        lines.append(f"{key:<20} {summary['updates']:>8} {accs[0]:>10} {accs[1]:>10} {accs[2]:>10}")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def run_status(settings: Settings, as_json: bool) -> int:
    """The ``status`` command."""
    kafka, redis = kafka_connection(settings), redis_connection(settings)
    if kafka is None or redis is None:
        raise StatusError(
            "status inspects a running deployment: set KAFKA_BOOTSTRAP_SERVERS and REDIS_URL"
        )
    status = read_status(settings, kafka, redis)
    if as_json:
        print(
            orjson.dumps(
                status.__dict__, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
            ).decode()
        )
    else:
        print(render(status))
    return 0
