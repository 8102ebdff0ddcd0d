"""Learning from trade outcomes: predict (prequential), then learn, once per outcome, in order."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from models.batch import BatchModel, batch_probabilities
from models.blend import Blend, Blender, SignalStatus
from models.dedupe import id_hash
from models.drift.alerts import AlertEvent
from models.drift.monitor import RetrainNeed
from models.keyed import KeyModel
from models.metrics import SOURCES, Tally
from models.shadow import ShadowTally
from models.version_blend import VersionBlend
from streams.alerts import ALERTS, RETRAIN, alert_message, drift_retrain_message, outbox_entry
from streams.batch_follower import BatchModelFollower
from streams.contracts import ContractError, ContractSpec, TradeOutcome, decode_outcome
from streams.dead_letters import DeadLetterer, Refusal
from streams.online_state import OnlineState, PartitionModels
from streams.placement import Misrouting
from streams.records import InputRecord, OutgoingRecord
from streams.telemetry import EngineMetrics

log = logging.getLogger(__name__)

#: Called with each learned outcome, its online and batch probabilities and its blend, as
#: scored before learning it (a backtest records them; None in a worker).
ScoredHook = Callable[[TradeOutcome, float, float | None, Blend], None]


@dataclass
class LearnResult:
    """What one micro-batch produced."""

    outgoing: list[OutgoingRecord] = field(default_factory=list)
    applied: list[InputRecord] = field(default_factory=list)
    skipped_not_owned: list[InputRecord] = field(default_factory=list)
    replayed: int = 0


class OutcomeLearner:
    r"""Applies trade outcomes to the online models of their keys, exactly once per offset.

    For each outcome, in partition order: score it with the online, batch and blended models
    *before* learning (prequential metrics), then learn it. Records at or below the partition's
    applied offset were learned before a crash or rebalance and are skipped. A record counts as
    applied (its offset enters the state that the next checkpoint writes) only once its effect
    is in that state: learned, or turned into a dead letter in :attr:`LearnResult.outgoing`
    (which the engines send and confirm before they checkpoint). Malformed records, repeated
    ``outcome_id``\ s and updates that would make the key's model non-finite become dead
    letters; the key keeps its previous state and the stream keeps flowing. So does the first
    outcome of a new key once its partition holds ``max_keys_per_partition`` keys: memory and
    Redis grow with keys, and a producer that invents keys must not grow them without bound.
    The decision depends only on the partition's state at that offset, so a replay repeats it.
    """

    def __init__(
        self,
        state: OnlineState,
        spec: ContractSpec,
        blender: Blender,
        batch: BatchModelFollower,
        dead_letter: DeadLetterer,
        metrics: EngineMetrics,
        misrouting: Misrouting | None = None,
        max_keys_per_partition: int | None = None,
    ) -> None:
        self.state = state
        self._misrouting = misrouting
        self._max_keys = max_keys_per_partition
        self._spec = spec
        self._blender = blender
        self._batch = batch
        self._dead_letter = dead_letter
        self._metrics = metrics
        self.on_scored: ScoredHook | None = None
        #: This micro-batch's prequential numbers over every key, per source (for the metrics).
        self._scored = {source: Tally() for source in SOURCES}

    async def process(self, records: Sequence[InputRecord]) -> LearnResult:
        """Learn a micro-batch (records of several partitions, each partition in offset order).

        Records of partitions that are not claimed on this worker are returned untouched in
        ``skipped_not_owned``.
        """
        result = LearnResult()
        todo: list[tuple[InputRecord, PartitionModels, TradeOutcome | Refusal]] = []
        loaded_by_partition: dict[int, PartitionModels] = {}
        newest: dict[int, int] = {}
        for record in records:
            loaded = loaded_by_partition.get(record.partition)
            if loaded is None:
                # Never claimed here: a claim must come with repositioning the consumer at the
                # stored offset, which only the engine can do (see streams.checkpointing).
                loaded = self.state.partitions.get(record.partition)
                if loaded is None:
                    result.skipped_not_owned.append(record)
                    continue
                loaded_by_partition[record.partition] = loaded
                newest[record.partition] = loaded.applied_offset
            if record.offset <= newest[record.partition]:
                result.replayed += 1
                result.applied.append(record)
                continue
            newest[record.partition] = record.offset
            try:
                todo.append((record, loaded, decode_outcome(record.value, record.key, self._spec)))
            except ContractError as exc:
                todo.append((record, loaded, Refusal.of(exc)))
        if todo:
            # The version active now, as the scorer reads it for every micro-batch: an outcome
            # is scored prequentially by the model that would have scored its signal (waiting
            # for the polling timer let a fast engine score thousands of outcomes with a
            # replaced model after a promotion). An unreadable pointer keeps the model held.
            batch_model, _ = await self._batch.model_for_batch()
            shadow = await self._batch.shadow_for_batch()
            self._apply(todo, batch_model, shadow, result)
        self._metrics.outcomes_replayed.inc(result.replayed)
        return result

    def _apply(
        self,
        todo: list[tuple[InputRecord, PartitionModels, TradeOutcome | Refusal]],
        batch_model: BatchModel | None,
        shadow: BatchModel | None,
        result: LearnResult,
    ) -> None:
        """Learn or dead-letter each record in order; its offset is applied after its effect.

        ``shadow``: the staged version, scored on each outcome next to ``batch_model``
        (:mod:`models.shadow`)."""
        valid = [item for _, _, item in todo if not isinstance(item, Refusal)]
        rows = [o.features for o in valid]
        p_batch = iter(batch_probabilities(batch_model, rows))
        p_shadow = iter(batch_probabilities(shadow, rows))
        start = None if batch_model is None else self._blender.start_for(batch_model.blend)
        learned = 0
        now = time.monotonic()
        for record, loaded, item in todo:
            if isinstance(item, Refusal):
                refusal: Refusal | None = item
            else:
                pb = next(p_batch)
                ps = next(p_shadow)
                staged = None if shadow is None else (shadow, ps)
                try:
                    refusal = self._learn_one(
                        record.partition, loaded, item, pb, batch_model, start, staged
                    )
                except Exception as exc:  # a bug must cost one record, not the partition
                    log.exception("outcome could not be learned", extra={"offset": record.offset})
                    refusal = Refusal(
                        "internal_error",
                        f"internal error while learning: {type(exc).__name__}: {exc}",
                    )
                    self._metrics.outcomes_refused.labels("error").inc()
            if refusal is None:
                learned += 1
            else:
                result.outgoing.append(self._dead_letter(record, refusal))
            loaded.applied_offset = record.offset
            loaded.advanced_at = now
            result.applied.append(record)
        self._metrics.outcomes_learned.inc(learned)
        self._metrics.count_scored(self._scored)

    def _learn_one(
        self,
        partition: int,
        loaded: PartitionModels,
        outcome: TradeOutcome,
        pb: float | None,
        batch_model: BatchModel | None,
        start: VersionBlend | None,
        staged: tuple[BatchModel, float | None] | None = None,
    ) -> Refusal | None:
        """Score, learn and monitor one outcome; why it is refused, else None.

        ``start``: what blends start from while ``batch_model`` is active
        (:meth:`~models.blend.Blender.start_for`, once per micro-batch); ``staged``: the
        staged version and its prediction, added to the key's shadow tally."""
        held = len(loaded.models)
        new_key = outcome.model_key not in loaded.models
        if self._max_keys is not None and held >= self._max_keys and new_key:
            self._metrics.outcomes_refused.labels("key_limit").inc()
            return Refusal(
                "key_limit",
                f"key_limit: partition {partition} holds {held} model keys, the limit "
                f"(limits.max_keys_per_partition); no model is made for {outcome.model_key!r}",
            )
        if new_key and self._misrouting is not None:
            self._misrouting.check_outcome_key(
                outcome.model_key, partition, self._dead_letter.source_topic
            )
        key_model = self.state.model_or_new(loaded, outcome.model_key)
        seen = key_model.seen
        hashed = 0
        if seen is not None:
            hashed = id_hash(outcome.outcome_id)
            if hashed in seen:
                self._metrics.outcomes_refused.labels("duplicate").inc()
                return Refusal(
                    "duplicate", f"duplicate: outcome_id {outcome.outcome_id!r} was already learned"
                )
        learner = key_model.learner
        won = outcome.label == 1
        p_online = learner.predict_proba(outcome.features)
        weight = self.state.config.sample_weight(outcome.realized_rr)
        if not learner.learn_checked(outcome.features, won, weight):
            self._metrics.outcomes_refused.labels("non_finite").inc()
            return Refusal(
                "non_finite",
                "non_finite: learning this outcome would make the online model of "
                f"{outcome.model_key!r} non-finite; the key kept its previous state",
            )
        if seen is not None:
            seen.add(hashed)
        fitted = key_model.blend
        blend = self._blender.blend(pb, p_online, learner.updates - 1, fitted, start)
        if fitted is not None and blend.status is SignalStatus.OK:  # both parts scored
            fitted.observe(pb, p_online, won, start)
        if self.on_scored is not None:
            self.on_scored(outcome, p_online, pb, blend)
        sources = key_model.metrics.sources  # PrequentialMetrics.update, without the dispatch
        scored = self._scored
        sources["online"].update(won, p_online, scored["online"])
        if pb is not None:
            sources["batch"].update(won, pb, scored["batch"])
        if blend.score is not None:
            sources["blend"].update(won, blend.score, scored["blend"])
        if staged is not None and staged[1] is not None:
            tally = key_model.shadow
            if tally is None or tally.version != staged[0].version:
                tally = key_model.shadow = ShadowTally(staged[0].version)
            tally.update(won, staged[1], pb)
        if key_model.drift is not None:
            reference = None if batch_model is None else batch_model.reference
            events, needs = key_model.drift.update(
                outcome.model_key, outcome.features, won, pb, p_online, blend.score, reference
            )
            if events or needs:
                version = None if batch_model is None else batch_model.version
                self._queue(partition, outcome, key_model, events, needs, version)
        key_model.last_ts = outcome.ts
        loaded.dirty.add(outcome.model_key)
        return None

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
