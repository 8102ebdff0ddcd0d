"""The composition root: settings -> the models' configs, and the adapters an engine runs on.

Every mapping from a settings group to a ``models`` config object lives here, once; every
Redis adapter a worker uses is created here. Tests and benchmarks that need no Redis assemble
an :class:`~streams.engine.Engine` from the in-memory twins instead (``memory_ports``).
"""

from __future__ import annotations

from collections.abc import Callable

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from config import Settings
from models.adapters.memory_pointer import MemoryPointer
from models.adapters.memory_state_store import MemoryStateStore
from models.adapters.redis_keys import RedisKeys
from models.adapters.redis_pointer import RedisPointer
from models.adapters.redis_registry import ModelRegistry
from models.adapters.redis_state_store import RedisStateStore
from models.drift.config import DriftConfig
from models.gate import GateConfig
from models.online import OnlineConfig
from models.store import ModelStore
from models.training import TrainConfig
from streams.contracts import ContractSpec
from streams.engine import Engine, ModelConfigs, Ports
from streams.learning import now_ms
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
    """What the decoders check, from the ``model`` and ``limits`` settings."""
    limits = settings.limits
    return ContractSpec(
        features=settings.model.features,
        key_field=settings.model.key_field,
        max_abs_feature=limits.max_abs_feature,
        max_key_bytes=limits.max_key_bytes,
        max_value_bytes=limits.max_value_bytes,
    )


def train_config(settings: Settings) -> TrainConfig:
    """Training hyper-parameters and split from the ``retrain`` settings."""
    retrain = settings.retrain
    return TrainConfig(
        num_boost_round=retrain.num_boost_round,
        max_depth=retrain.max_depth,
        eta=retrain.eta,
        validation_fraction=retrain.validation_fraction,
        holdout_fraction=retrain.holdout_fraction,
        purge_rows=retrain.purge_rows,
        balance_classes=retrain.balance_classes,
        weight_by_rr=retrain.weight_by_rr,
        threads=retrain.threads,
    )


def gate_config(settings: Settings) -> GateConfig:
    """The champion/challenger gate from the ``retrain`` settings."""
    retrain = settings.retrain
    return GateConfig(
        primary_metric=retrain.primary_metric,
        margin=retrain.margin,
        alpha=retrain.alpha,
        n_resamples=retrain.bootstrap_resamples,
    )


def model_configs(settings: Settings) -> ModelConfigs:
    """The configs an engine's processors are built with."""
    return ModelConfigs(online_config(settings), drift_config(settings), contract_spec(settings))


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


def redis_ports(settings: Settings, redis_url: str) -> Ports:
    """A worker's ports on Redis (one connection pool) and the model store on disk."""
    client = redis_client(settings, redis_url)
    keys = RedisKeys(settings.redis.namespace)
    return Ports(
        state_store=RedisStateStore(client, keys, TopicNames.from_settings(settings).outcomes),
        pointer=RedisPointer(client, keys),
        model_store=ModelStore(settings.batch.store_path),
        redis=client,
        keys=keys,
    )


def memory_ports(settings: Settings) -> Ports:
    """The same ports on the in-memory twins (no Redis): for tests and benchmarks."""
    return Ports(
        state_store=MemoryStateStore(),
        pointer=MemoryPointer(),
        model_store=ModelStore(settings.batch.store_path),
    )


def build_engine(
    settings: Settings,
    redis_url: str,
    is_assigned: Callable[[int], bool],
    clock: Callable[[], int] = now_ms,
) -> Engine:
    """A worker's engine on Redis; no connection is opened until it is used."""
    return Engine.assemble(
        settings, model_configs(settings), redis_ports(settings, redis_url), is_assigned, clock
    )


def active_version(settings: Settings, redis_url: str) -> str | None:
    """The registry's active version, read once (blocking; for start-up)."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = RedisKeys(settings.redis.namespace)
        return ModelRegistry(client, keys, ModelStore(settings.batch.store_path)).active()
    finally:
        client.close()
