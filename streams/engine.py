"""The engine: the processors, online state and batch-model follower of one worker, assembled
on its ports (the Redis adapters in production, the in-memory twins in tests); the settings ->
config mapping and the adapters are the composition root's (``app.composition``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from config import Settings
from models.batch import BatchModelError, load_batch_model
from models.blend import Blender, BlendFit
from models.coordination import RetrainGuard
from models.drift.config import DriftConfig
from models.model_source import ActivePointer
from models.online import OnlineConfig
from models.state_store import StateStore
from models.store import ModelStore
from streams.batch_follower import BatchModelFollower, BatchModelHolder
from streams.checkpointing import Checkpointer, Publisher, Sender
from streams.contracts import ContractSpec
from streams.dead_letters import DeadLetterer
from streams.health import Health
from streams.learning import OutcomeLearner
from streams.messages import LETTER_KINDS
from streams.online_state import OnlineState
from streams.placement import Misrouting, Placement
from streams.records import now_ms
from streams.scoring import RequestScorer
from streams.telemetry import EngineMetrics
from streams.topics import TopicNames


@dataclass(frozen=True)
class ModelConfigs:
    """The ``models`` configs the processors are built with (mapped from settings by the
    composition root, ``app.composition``)."""

    online: OnlineConfig
    drift: DriftConfig | None
    spec: ContractSpec
    #: How keys fit their own blend (``optimized``, ``stacked``); None: the fixed weights.
    blend: BlendFit | None = None


class Connection(Protocol):
    """The connection the adapters share (the Redis pool in production): probed by
    ``/ready``, closed with the engine."""

    async def ping(self) -> Any:
        """Raise if the backing service cannot answer."""
        ...

    async def aclose(self) -> None:
        """Release it."""
        ...


@dataclass(frozen=True)
class Ports:
    """What an engine needs from outside: where learner state lives, which batch model is
    active, where model versions are stored, who may request a drift retrain; plus the
    connection behind those adapters (None on the in-memory twins)."""

    state_store: StateStore
    pointer: ActivePointer
    model_store: ModelStore
    retrain_guard: RetrainGuard
    connection: Connection | None = None


def dead_letterer(
    settings: Settings, source: str, target: str, clock: Callable[[], int], metrics: EngineMetrics
) -> DeadLetterer:
    """Dead letters of one input topic, within the configured key and message limits, counted
    by the kind of rule they broke."""
    limits = settings.limits

    for kind in LETTER_KINDS:  # every series exists from the start (rate() needs it)
        metrics.dead_letters.labels(source, kind)

    def count(kind: str) -> None:
        metrics.dead_letters.labels(source, kind).inc()

    return DeadLetterer(
        source, target, clock, limits.max_key_bytes, limits.max_message_bytes, on_letter=count
    )


@dataclass
class Engine:
    """Learner, scorer, online state, batch-model follower and metrics of one worker."""

    settings: Settings
    topics: TopicNames
    ports: Ports
    metrics: EngineMetrics
    state: OnlineState
    batch: BatchModelHolder
    follower: BatchModelFollower
    learner: OutcomeLearner
    scorer: RequestScorer
    health: Health
    #: The partition count the co-partitioning checks use (set by the adapter on assignment).
    placement: Placement

    @classmethod
    def assemble(
        cls,
        settings: Settings,
        configs: ModelConfigs,
        ports: Ports,
        is_assigned: Callable[[int], bool],
        clock: Callable[[], int] = now_ms,
    ) -> Engine:
        """Compose the engine on ``ports``; no connection is opened until it is used."""
        topics = TopicNames.from_settings(settings)
        metrics = EngineMetrics()
        state = OnlineState(
            ports.state_store,
            configs.online,
            is_assigned,
            configs.drift,
            on_quarantine=metrics.states_quarantined.inc,
            fence_block_s=settings.kafka.session_timeout_s,
            blend=configs.blend,
        )
        blender = Blender(
            settings.blend.w_batch,
            settings.blend.w_online,
            settings.online.min_updates,
            settings.blend.start,
        )
        placement = Placement()
        misrouting = Misrouting(placement, on_key=lambda t: metrics.keys_misplaced.labels(t).inc())
        holder = BatchModelHolder()
        follower = BatchModelFollower(
            holder,
            ports.pointer,
            ports.model_store,
            settings.model.features,
            threads=settings.batch.predict_threads,
            on_swap=metrics.batch_model_swaps.inc,
            on_pointer_error=metrics.dependency_errors.labels("redis", "pointer").inc,
            load_wait_s=settings.batch.load_wait_s,
        )
        learner = OutcomeLearner(
            state,
            configs.spec,
            blender,
            follower,
            dead_letterer(settings, topics.outcomes, topics.outcomes_dead_letter, clock, metrics),
            metrics,
            misrouting,
            max_keys_per_partition=settings.limits.max_keys_per_partition,
        )
        scorer = RequestScorer(
            state,
            configs.spec,
            blender,
            follower,
            topics.signals,
            dead_letterer(settings, topics.requests, topics.requests_dead_letter, clock, metrics),
            metrics,
            misrouting,
            clock,
            max_age_ms=settings.limits.max_request_age_ms,
            explain_top=settings.signal.explain_top if settings.signal.explain else 0,
        )
        return cls(
            settings,
            topics,
            ports,
            metrics,
            state,
            holder,
            follower,
            learner,
            scorer,
            Health(),
            placement,
        )

    def checkpointer(self, sender: Sender, outbox: Publisher | None) -> Checkpointer:
        """The checkpoint protocol over this engine's state, with the configured cadence."""
        checkpoint, redis_settings = self.settings.checkpoint, self.settings.redis
        return Checkpointer(
            self.state,
            sender,
            self.metrics,
            every_outcomes=checkpoint.every_outcomes,
            interval_s=checkpoint.interval_ms / 1000.0,
            store_timeout_s=max(2.0, 2 * redis_settings.timeout_s),
            max_outage_s=redis_settings.max_outage_s,
            outbox=outbox,
        )

    def load_model_now(self, version: str | None) -> str | None:
        """Blocking start-up load of ``version`` (the active one), so the first signals can use
        it. Returns the reason when it could not be loaded (the worker then starts without a
        batch model and keeps following the pointer), else None."""
        if version is None:
            return None
        try:
            model = load_batch_model(
                self.ports.model_store,
                version,
                self.settings.model.features,
                self.settings.batch.predict_threads,
            )
        except BatchModelError as exc:
            return str(exc)
        self.follower.remember(model)
        return None

    async def sync_batch_model(self) -> None:
        """Follow the registry pointer (called periodically and on ``model-updates``)."""
        await self.follower.sync()

    def status(self, key_offset: int = 0, key_limit: int | None = None) -> dict[str, Any]:
        """What this worker holds right now (for the ``/status`` view): partitions, batch
        version, and one page of the keys in key order (all of them without ``key_limit``)."""
        total = self.state.key_count
        end = total if key_limit is None else min(total, key_offset + key_limit)
        return {
            "batch_version": self.batch.version,
            "batch_error": self.follower.last_error,
            "partitions": {
                p: {"applied_offset": m.applied_offset, "epoch": m.epoch, "keys": len(m.models)}
                for p, m in sorted(self.state.partitions.items())
            },
            "keys_total": total,
            "keys_offset": key_offset,
            "keys_next_offset": end if end < total else None,
            "keys": self.state.key_summaries(key_offset, key_limit),
        }

    async def close(self) -> None:
        """Release the ports' connection (if they have one)."""
        if self.ports.connection is not None:
            await self.ports.connection.aclose()
