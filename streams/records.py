"""Transport-neutral records passed between agents and processors."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One consumed Kafka record, reduced to what the processors need."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A record to produce (a signal or a dead letter)."""

    topic: str
    key: bytes | None
    value: bytes
