"""Engines on the in-memory twins (no broker, no Redis) for processor tests, and records to
feed them."""

from __future__ import annotations

from app.composition import memory_engine
from config import load_settings
from streams.contracts import encode_message
from streams.engine import Engine, Ports
from streams.records import InputRecord


def in_memory_engine(ports: Ports | None = None, **groups: dict) -> Engine:
    """An engine with default settings plus ``groups`` overrides, on ``ports`` (fresh
    in-memory twins by default), owning every partition, its clock fixed at 123."""
    settings = load_settings(environ={}).with_overrides(**groups)
    return memory_engine(settings, ports, clock=lambda: 123)


async def claimed(engine: Engine) -> Engine:
    """Claim partition 0, as the engines do on assignment (the processors never claim)."""
    await engine.state.ensure(0)
    return engine


def input_records(messages: list[dict], start: int = 0, partition: int = 0) -> list[InputRecord]:
    """``messages`` as input records of ``partition`` from offset ``start`` (key ``global``)."""
    return [
        InputRecord(partition, start + i, b"global", encode_message(m))
        for i, m in enumerate(messages)
    ]
