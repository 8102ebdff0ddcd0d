"""Learning from trade outcomes: predict (prequential), then learn, once per outcome, in order."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from models.batch import batch_probabilities
from models.blend import Blender
from models.drift.alerts import AlertEvent
from models.drift.monitor import RetrainNeed
from models.keyed import KeyModel
from streams.alerts import ALERTS, RETRAIN, alert_message, drift_retrain_message, outbox_entry
from streams.batch_follower import BatchModelHolder
from streams.contracts import ContractError, ContractSpec, TradeOutcome, decode_outcome
from streams.dead_letters import DeadLetterer
from streams.online_state import OnlineState
from streams.records import InputRecord, OutgoingRecord
from streams.telemetry import EngineMetrics


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass
class LearnResult:
    """What one micro-batch produced."""

    outgoing: list[OutgoingRecord] = field(default_factory=list)
    applied: list[InputRecord] = field(default_factory=list)
    skipped_not_owned: list[InputRecord] = field(default_factory=list)
    replayed: int = 0


class OutcomeLearner:
    """Applies trade outcomes to the online models of their keys, exactly once per offset.

    For each outcome, in partition order: score it with the online, batch and blended models
    *before* learning (prequential metrics), then learn it. Records at or below the partition's
    applied offset were learned before a crash or rebalance and are skipped; malformed records
    become dead letters and count as applied, so the stream never stops on bad input.
    """

    def __init__(
        self,
        state: OnlineState,
        spec: ContractSpec,
        blender: Blender,
        batch: BatchModelHolder,
        dead_letter: DeadLetterer,
        metrics: EngineMetrics,
    ) -> None:
        self.state = state
        self._spec = spec
        self._blender = blender
        self._batch = batch
        self._dead_letter = dead_letter
        self._metrics = metrics

    async def process(self, records: Sequence[InputRecord]) -> LearnResult:
        """Learn a micro-batch (records of several partitions, each partition in offset order)."""
        result = LearnResult()
        fresh: list[tuple[InputRecord, TradeOutcome]] = []
        loaded_by_partition = {}
        for record in records:
            loaded = loaded_by_partition.get(record.partition)
            if loaded is None:
                loaded = await self.state.ensure(record.partition)
                if loaded is None:
                    result.skipped_not_owned.append(record)
                    continue
                loaded_by_partition[record.partition] = loaded
            if record.offset <= loaded.applied_offset:
                result.replayed += 1
                result.applied.append(record)
                continue
            try:
                outcome = decode_outcome(record.value, record.key, self._spec)
            except ContractError as exc:
                result.outgoing.append(self._dead_letter(record, exc.reason))
                loaded.applied_offset = record.offset
                result.applied.append(record)
                continue
            fresh.append((record, outcome))
            # Mark as applied now so a duplicate offset later in this batch is skipped.
            loaded.applied_offset = record.offset
        self._learn(fresh, loaded_by_partition)
        result.applied.extend(record for record, _ in fresh)
        self._metrics.outcomes_learned.inc(len(fresh))
        self._metrics.outcomes_replayed.inc(result.replayed)
        if result.outgoing:
            self._metrics.dead_letters.labels(self._dead_letter.source_topic).inc(
                len(result.outgoing)
            )
        return result

    def _learn(
        self, fresh: list[tuple[InputRecord, TradeOutcome]], loaded_by_partition: dict
    ) -> None:
        if not fresh:
            return
        batch_model = self._batch.current
        p_batch = batch_probabilities(batch_model, [o.features for _, o in fresh])
        reference = None if batch_model is None else batch_model.reference
        version = None if batch_model is None else batch_model.version
        config = self.state.config
        for (record, outcome), pb in zip(fresh, p_batch, strict=True):
            loaded = loaded_by_partition[record.partition]
            key_model = self.state.model_or_new(loaded, outcome.model_key)
            learner, metrics = key_model.learner, key_model.metrics
            won = outcome.label == 1
            p_online = learner.predict_proba(outcome.features)
            blend = self._blender.blend(pb, p_online, learner.updates)
            metrics.update("online", won, p_online)
            metrics.update("batch", won, pb)
            metrics.update("blend", won, blend.score)
            if key_model.drift is not None:
                events, needs = key_model.drift.update(
                    outcome.model_key, outcome.features, won, pb, p_online, blend.score, reference
                )
                if events or needs:
                    self._queue(record.partition, outcome, key_model, events, needs, version)
            learner.learn(outcome.features, won, config.sample_weight(outcome.realized_rr))
            key_model.last_ts = outcome.ts
            loaded.dirty.add(outcome.model_key)

    def _queue(
        self,
        partition: int,
        outcome: TradeOutcome,
        key_model: KeyModel,
        events: Sequence[AlertEvent],
        needs: Sequence[RetrainNeed],
        version: str | None,
    ) -> None:
        """Put alerts and retrain requests in the key's outbox (published after checkpoint)."""
        key = outcome.model_key
        for event in events:
            message = alert_message(event, key, version, outcome.ts)
            key_model.outbox.append(outbox_entry(ALERTS, message["alert_id"], key, message))
            self._metrics.drift_alerts.labels(event.kind, event.event).inc()
        for need in needs:
            message = drift_retrain_message(need, key, outcome.ts)
            key_model.outbox.append(outbox_entry(RETRAIN, message["request_id"], key, message))
        self.state.note_outbox(partition, key)
