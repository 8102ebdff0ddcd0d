"""Replaying outcomes through a worker's own learner, in process: the backtest's engine room.

The engine is the one a worker runs (``Engine.assemble``), on in-memory ports: no broker, no
Redis, no checkpoints. Outcomes go through :meth:`OutcomeLearner.process` in micro-batches,
in order, with the batch model that was active at each outcome's time (the pointer is moved
between micro-batches, so a batch never mixes versions); what the learner scored before
learning each outcome is recorded, and the drift alerts and retrain requests it queued are
collected instead of published.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from models.backtest import ScoredOutcomes
from models.blend import Blend
from streams.alerts import ALERTS, RETRAIN
from streams.contracts import TradeOutcome
from streams.engine import Engine
from streams.records import InputRecord

#: Outcomes per call of the learner (a worker's micro-batches are of this order).
MICRO_BATCH = 500


@dataclass(frozen=True)
class VersionTimeline:
    """Which batch version was active from when (epoch ms), oldest first; None: no model."""

    changes: tuple[tuple[int, str | None], ...] = ()

    def at(self, ms: int) -> str | None:
        """The version active at ``ms`` (None before the first activation).

        >>> VersionTimeline(((10, "a"), (20, "b"))).at(15)
        'a'
        """
        index = bisect.bisect_right(self.changes, ms, key=lambda change: change[0]) - 1
        return self.changes[index][1] if index >= 0 else None

    @classmethod
    def constant(cls, version: str | None) -> VersionTimeline:
        """One version throughout (or none)."""
        return cls(((-(2**62), version),))


@dataclass
class Replay:
    """What a replay produced: the scored outcomes, the messages the learner would have
    published (alerts, retrain requests), dead-letter reasons and the versions used."""

    scored: ScoredOutcomes = field(default_factory=ScoredOutcomes)
    alerts: list[dict] = field(default_factory=list)
    retrain_requests: list[dict] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    versions: list[str | None] = field(default_factory=list)


async def replay(
    engine: Engine,
    records: Sequence[InputRecord],
    times_ms: Sequence[int],
    timeline: VersionTimeline,
    use_version: Callable[[str | None], None],
    progress: Callable[[int], None] | None = None,
) -> Replay:
    """Learn ``records`` (each partition in offset order) as the worker would have.

    ``times_ms[i]`` is when record ``i`` was processed live (its Kafka timestamp, or its trade
    time); ``use_version`` points the engine's in-memory pointer at a version.
    """
    result = Replay()

    def record(outcome: TradeOutcome, p_online: float, pb: float | None, blend: Blend) -> None:
        result.scored.add(
            outcome.model_key, outcome.label == 1, outcome.realized_rr, p_online, pb, blend.score
        )

    engine.learner.on_scored = record
    for partition in sorted({r.partition for r in records}):
        await engine.state.ensure(partition)
    start = 0
    while start < len(records):
        version = timeline.at(times_ms[start])
        end = min(start + MICRO_BATCH, len(records))
        for i in range(start + 1, end):
            if timeline.at(times_ms[i]) != version:
                end = i
                break
        use_version(version)
        if not result.versions or result.versions[-1] != version:
            result.versions.append(version)
        learned = await engine.learner.process(records[start:end])
        for dead in learned.outgoing:
            result.refused[_reason_kind(dead.value)] += 1
        for entry in engine.state.drain_outbox():
            if entry["topic"] == ALERTS:
                result.alerts.append(entry["value"])
            elif entry["topic"] == RETRAIN:
                result.retrain_requests.append(entry["value"])
        start = end
        if progress is not None:
            progress(start)
    engine.learner.on_scored = None
    result.alerts.sort(key=lambda alert: alert.get("ts", 0))
    return result


def _reason_kind(dead_letter: bytes) -> str:
    """A dead letter's ``kind`` (``duplicate``, ``invalid``, ...: see
    ``streams.messages.LETTER_KINDS``)."""
    try:
        return str(orjson.loads(dead_letter).get("kind") or "unknown")
    except (orjson.JSONDecodeError, AttributeError):
        return "unknown"
