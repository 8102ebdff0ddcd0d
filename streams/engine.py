"""The engine: every processor and store of one worker, built from settings in one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from config import Settings
from models.batch import BatchModelError, load_batch_model
from models.blend import Blender
from models.drift.config import DriftConfig
from models.online import OnlineConfig
from models.redis_keys import RedisKeys
from models.registry import ModelRegistry
from models.state_store import PartitionStateStore
from models.store import ModelStore
from streams.batch_follower import BatchModelFollower, BatchModelHolder
from streams.checkpointing import Checkpointer, Publisher, Sender
from streams.contracts import ContractSpec
from streams.dead_letters import DeadLetterer
from streams.health import Health
from streams.learning import OutcomeLearner, now_ms
from streams.online_state import OnlineState
from streams.scoring import RequestScorer
from streams.telemetry import EngineMetrics
from streams.topics import TopicNames


def online_config(settings: Settings) -> OnlineConfig:
    """The learner's hyper-parameters from the ``online`` settings."""
    online = settings.online
    return OnlineConfig(
        learning_rate=online.learning_rate,
        decay_half_life=online.decay_half_life,
        weight_by_rr=online.weight_by_rr,
        max_sample_weight=online.max_sample_weight,
        dedupe_window=online.dedupe_window,
    )


def drift_config(settings: Settings) -> DriftConfig | None:
    """The drift monitors' settings, or None when drift detection is off."""
    drift = settings.drift
    if not drift.enabled:
        return None
    return DriftConfig(
        kinds=drift.kinds,
        concept_sources=drift.concept_sources,
        alert_sources=drift.alert_sources,
        detector=drift.detector,
        adwin_delta=drift.adwin_delta,
        replay_window=drift.replay_window,
        min_degradation=drift.min_degradation,
        recovery_tolerance=drift.recovery_tolerance,
        cooldown_outcomes=drift.cooldown_outcomes,
        check_every=drift.check_every,
        psi_alert=drift.psi_alert,
        psi_borderline=drift.psi_borderline,
        ks_alpha=drift.ks_alpha,
        label_alpha=drift.label_alpha,
        label_min_shift=drift.label_min_shift,
        retrain_on=drift.retrain_on,
        retrain_delay_outcomes=drift.retrain_delay_outcomes,
        retrain_min_window=drift.retrain_min_window,
    )


def contract_spec(settings: Settings) -> ContractSpec:
    """What the decoders check, from the ``model`` settings."""
    limits = settings.limits
    return ContractSpec(
        features=settings.model.features,
        key_field=settings.model.key_field,
        max_abs_feature=limits.max_abs_feature,
        max_key_bytes=limits.max_key_bytes,
        max_value_bytes=limits.max_value_bytes,
    )


def dead_letterer(
    settings: Settings, source: str, target: str, clock: Callable[[], int]
) -> DeadLetterer:
    """Dead letters of one input topic, within the configured key and message limits."""
    limits = settings.limits
    return DeadLetterer(source, target, clock, limits.max_key_bytes, limits.max_message_bytes)


def redis_client(settings: Settings, url: str) -> aioredis.Redis:
    """An asyncio Redis client that fails fast: a paused or dead Redis is an error within
    ``redis.timeout_s`` (redis-py's default waits forever), which the callers turn into "pause
    learning, keep scoring, retry with backoff" instead of a hung event loop."""
    timeout = settings.redis.timeout_s
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


@dataclass
class Engine:
    """Learner, scorer, online state, batch-model follower and metrics of one worker."""

    settings: Settings
    topics: TopicNames
    redis: aioredis.Redis
    keys: RedisKeys
    metrics: EngineMetrics
    state: OnlineState
    batch: BatchModelHolder
    follower: BatchModelFollower
    learner: OutcomeLearner
    scorer: RequestScorer
    health: Health

    @classmethod
    def build(
        cls,
        settings: Settings,
        redis_url: str,
        is_assigned: Callable[[int], bool],
        clock: Callable[[], int] = now_ms,
    ) -> Engine:
        """Compose the engine; no connection is opened until it is used."""
        topics = TopicNames.from_settings(settings)
        client = redis_client(settings, redis_url)
        keys = RedisKeys(settings.redis.namespace)
        metrics = EngineMetrics()
        store = PartitionStateStore(client, keys, topics.outcomes)
        state = OnlineState(
            store,
            online_config(settings),
            is_assigned,
            drift_config(settings),
            on_quarantine=metrics.states_quarantined.inc,
            fence_block_s=settings.kafka.session_timeout_s,
        )
        spec = contract_spec(settings)
        blender = Blender(
            settings.blend.w_batch, settings.blend.w_online, settings.online.min_updates
        )
        holder = BatchModelHolder()
        follower = BatchModelFollower(
            holder,
            client,
            keys,
            ModelStore(settings.batch.store_path),
            settings.model.features,
            threads=settings.batch.predict_threads,
            on_swap=metrics.batch_model_swaps.inc,
        )
        learner = OutcomeLearner(
            state,
            spec,
            blender,
            holder,
            dead_letterer(settings, topics.outcomes, topics.outcomes_dead_letter, clock),
            metrics,
        )
        scorer = RequestScorer(
            state,
            spec,
            blender,
            follower,
            topics.signals,
            dead_letterer(settings, topics.requests, topics.requests_dead_letter, clock),
            metrics,
            clock,
        )
        return cls(
            settings,
            topics,
            client,
            keys,
            metrics,
            state,
            holder,
            follower,
            learner,
            scorer,
            Health(),
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

    def load_active_model_now(self, redis_url: str) -> str | None:
        """Blocking start-up load of the active batch model, so the first signals can use it.

        Returns the reason when the active version could not be loaded (the worker then starts
        without a batch model and keeps trying), else None.
        """
        store = ModelStore(self.settings.batch.store_path)
        client = redis.Redis.from_url(redis_url)
        try:
            version = ModelRegistry(client, self.keys, store).active()
        finally:
            client.close()
        if version is None:
            return None
        try:
            model = load_batch_model(
                store,
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

    def status(self) -> dict[str, Any]:
        """What this worker holds right now (for the ``/status`` view)."""
        return {
            "batch_version": self.batch.version,
            "batch_error": self.follower.last_error,
            "partitions": {
                p: {"applied_offset": m.applied_offset, "epoch": m.epoch, "keys": len(m.models)}
                for p, m in sorted(self.state.partitions.items())
            },
            "keys": self.state.key_summaries(),
        }

    async def close(self) -> None:
        """Release the Redis connection pool."""
        await self.redis.aclose()
