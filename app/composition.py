"""The composition root: settings -> the models' configs, and the adapters every service runs on.

Every mapping from a settings group to a ``models`` config object lives here, once; every
Redis adapter (of the worker, the retrainer and the CLI) is created here, so no other module
knows the Redis key layout. Tests and benchmarks that need no Redis assemble an
:class:`~streams.engine.Engine` from the in-memory twins instead (``memory_ports``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from pydantic import BaseModel
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.redis_connection import RedisConnection
from config import Settings
from models.adapters.directory_blobs import DirectoryBlobStore
from models.adapters.memory_coordination import MemoryRetrainGuard
from models.adapters.memory_pointer import MemoryPointer
from models.adapters.memory_state_store import MemoryStateStore
from models.adapters.mlflow_tracker import MlflowTracker
from models.adapters.redis_clients import AsyncRedisClient, RedisClient
from models.adapters.redis_coordination import (
    RedisNotifierState,
    RedisReplayLedger,
    RedisRetrainerState,
    RedisRetrainGuard,
)
from models.adapters.redis_keys import RedisKeys
from models.adapters.redis_pointer import RedisPointer
from models.adapters.redis_registry import RedisRegistry
from models.adapters.redis_state_store import RedisStateStore
from models.adapters.s3_blobs import S3BlobStore
from models.blend_training import BlendTrainConfig
from models.blend_weights import WeightFitConfig
from models.blobs import BlobStore
from models.coordination import NotifierState, ReplayLedger, RetrainerState
from models.decay import half_life_of_window
from models.drift.config import DriftConfig
from models.gate import GateConfig
from models.online import OnlineConfig
from models.registry import ModelRegistry
from models.stacking import StackConfig
from models.state_store import StateStore
from models.store import ModelStore
from models.tracking import RunTracker
from models.training import TrainConfig
from models.triggers import Schedule, TriggerConfig
from models.tuning import TuningConfig, dimensions
from streams.contracts import ContractSpec
from streams.engine import Engine, ModelConfigs, Ports
from streams.kafka_connection import KafkaConnection
from streams.records import now_ms
from streams.topics import TopicNames

T = TypeVar("T")


def _mapped(config: type[T], group: BaseModel, **extra: Any) -> T:
    """A ``models`` config from the settings group fields of the same names (+ ``extra``);
    fields the settings do not expose keep the config's defaults."""
    named = {
        f.name: getattr(group, f.name) for f in fields(config) if f.name in type(group).model_fields
    }
    return config(**named, **extra)


def online_config(settings: Settings) -> OnlineConfig:
    """The learner's hyper-parameters from the ``online`` settings (the decay as a half-life,
    however it was spelled)."""
    online = settings.online
    config = _mapped(OnlineConfig, online)
    if online.window_size is not None and online.decay_factor is not None:
        half_life = half_life_of_window(online.window_size, online.decay_factor)
        config = replace(config, decay_half_life=half_life)
    return config


def drift_config(settings: Settings) -> DriftConfig | None:
    """The drift monitors' settings, or None when drift detection is off."""
    return _mapped(DriftConfig, settings.drift) if settings.drift.enabled else None


def contract_spec(settings: Settings) -> ContractSpec:
    """What the decoders check, from the ``model`` and ``limits`` settings (the mapping the
    client library shares: :meth:`ContractSpec.from_settings`)."""
    return ContractSpec.from_settings(settings)


def train_config(settings: Settings) -> TrainConfig:
    """Training hyper-parameters and split from the ``retrain`` settings."""
    return _mapped(TrainConfig, settings.retrain)


def tuning_config(settings: Settings) -> TuningConfig | None:
    """The retrain's Optuna study (None: ``retrain.tuning = off``): its budget, folds, seed
    and the configured family's search space."""
    retrain = settings.retrain
    if retrain.tuning == "off":
        return None
    space = retrain.search_spaces.get(retrain.family, {})
    return TuningConfig(
        space=dimensions({name: d.model_dump() for name, d in space.items()}),
        trials=retrain.tuning_trials if retrain.tuning == "trials" else None,
        time_s=retrain.tuning_time_s if retrain.tuning == "time" else None,
        folds=retrain.tuning_folds,
    )


def run_tracker(settings: Settings) -> RunTracker | None:
    """Where retrains are tracked (MLflow at ``tracking.mlflow_uri``), or None when unset."""
    if settings.tracking.mlflow_uri is None:
        return None
    tracking = settings.tracking
    return MlflowTracker(tracking.mlflow_uri, tracking.experiment, tracking.artifact_location)


def trigger_config(settings: Settings) -> TriggerConfig:
    """The retrainer's own triggers (schedule, volume); raises ScheduleError on a bad
    ``retrain.schedule``."""
    retrain = settings.retrain
    schedule = None if retrain.schedule is None else Schedule.parse(retrain.schedule)
    return TriggerConfig(schedule=schedule, every_outcomes=retrain.every_outcomes)


def gate_config(settings: Settings) -> GateConfig:
    """The champion/challenger gate from the ``retrain`` settings."""
    return _mapped(GateConfig, settings.retrain, n_resamples=settings.retrain.bootstrap_resamples)


def blend_fit(settings: Settings) -> WeightFitConfig | StackConfig | None:
    """How keys fit their own blend: weights (``blend.mode = optimized``), a meta-learner
    (``stacked``), or None (``fixed``)."""
    blend = settings.blend
    if blend.mode == "optimized":
        return _mapped(WeightFitConfig, blend)
    if blend.mode == "stacked":
        return stack_config(settings)
    return None


def stack_config(settings: Settings) -> StackConfig:
    """The ``stacked`` mode's meta-learner from the ``blend`` settings."""
    blend = settings.blend
    return StackConfig(
        w_batch=blend.w_batch,
        inputs=blend.stack_inputs,
        learning_rate=blend.stack_learning_rate,
        min_outcomes=blend.stack_min_outcomes,
    )


def blend_training(settings: Settings) -> BlendTrainConfig | None:
    """How a new batch version's blend is fitted at retrain time (None: ``retrain.blend_folds``
    is 0): the optimized and stacked modes' own configs, the online learner's."""
    if not settings.retrain.blend_folds:
        return None
    return BlendTrainConfig(
        folds=settings.retrain.blend_folds,
        weights=_mapped(WeightFitConfig, settings.blend),
        stack=stack_config(settings),
        min_updates=settings.online.min_updates,
        online=online_config(settings),
    )


def model_key_column(settings: Settings, frame_columns: Sequence[str]) -> str | None:
    """The column of a training window naming each row's model key: ``model_key`` (windows
    read from the topic), else the ``model.key_field`` column of a file, else None (one key)."""
    if "model_key" in frame_columns:
        return "model_key"
    return settings.model.key_field


def model_configs(settings: Settings) -> ModelConfigs:
    """The configs an engine's processors are built with."""
    return ModelConfigs(
        online_config(settings),
        drift_config(settings),
        contract_spec(settings),
        blend_fit(settings),
    )


def redis_client(settings: Settings, redis_connection: RedisConnection) -> AsyncRedisClient:
    """An asyncio Redis client that fails fast: a paused or dead Redis is an error within
    ``redis.timeout_s`` (redis-py's default waits forever), which the callers turn into "pause
    learning, keep scoring, retry with backoff" instead of a hung event loop."""
    timeout = settings.redis.timeout_s
    return redis_connection.async_client(
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


def blocking_redis_client(settings: Settings, redis_connection: RedisConnection) -> RedisClient:
    """A blocking Redis client (CLI, retrainer, the worker's start-up read) that fails within
    ``redis.timeout_s`` per call: redis-py's default waits forever on a paused Redis."""
    timeout = settings.redis.timeout_s
    return redis_connection.client(socket_timeout=timeout, socket_connect_timeout=timeout)


def redis_ports(settings: Settings, redis_connection: RedisConnection) -> Ports:
    """A worker's ports on Redis (one connection pool) and the model store on disk."""
    client = redis_client(settings, redis_connection)
    keys = RedisKeys(settings.redis.namespace)
    return Ports(
        state_store=RedisStateStore(client, keys, TopicNames.from_settings(settings).outcomes),
        pointer=RedisPointer(client, keys),
        model_store=model_store(settings),
        retrain_guard=RedisRetrainGuard(client, keys),
        connection=client,
    )


def memory_ports(settings: Settings) -> Ports:
    """The same ports on the in-memory twins (no Redis): for tests and benchmarks."""
    return Ports(
        state_store=MemoryStateStore(),
        pointer=MemoryPointer(),
        model_store=model_store(settings),
        retrain_guard=MemoryRetrainGuard(),
    )


def memory_engine(
    settings: Settings, ports: Ports | None = None, clock: Callable[[], int] = now_ms
) -> Engine:
    """An engine on the in-memory twins (fresh ones by default) that owns every partition: a
    worker's processors without a broker or Redis (backtests, tests)."""
    return Engine.assemble(
        settings,
        model_configs(settings),
        ports or memory_ports(settings),
        is_assigned=lambda p: True,
        clock=clock,
    )


def build_engine(
    settings: Settings,
    redis_connection: RedisConnection,
    is_assigned: Callable[[int], bool],
    clock: Callable[[], int] = now_ms,
) -> Engine:
    """A worker's engine on Redis; no connection is opened until it is used."""
    return Engine.assemble(
        settings,
        model_configs(settings),
        redis_ports(settings, redis_connection),
        is_assigned,
        clock,
    )


def model_store(settings: Settings) -> ModelStore:
    """Where batch model versions (and the registry journal) are stored."""
    return ModelStore(blob_store(settings))


def blob_store(settings: Settings) -> BlobStore:
    """The blob store ``batch.store`` names: S3 for ``s3://``, else a local directory."""
    batch = settings.batch
    if batch.shared:
        return S3BlobStore.from_url(batch.store, batch.s3_endpoint_url, batch.s3_region)
    return DirectoryBlobStore(batch.store)


def registry_on(settings: Settings, client: RedisClient) -> ModelRegistry:
    """The model registry on an open Redis connection (the caller owns it)."""
    return ModelRegistry(
        RedisRegistry(client, RedisKeys(settings.redis.namespace)), model_store(settings)
    )


@contextmanager
def registry(settings: Settings, redis_connection: RedisConnection) -> Iterator[ModelRegistry]:
    """The model registry on its own connection, closed on exit (for CLI commands)."""
    client = blocking_redis_client(settings, redis_connection)
    try:
        yield registry_on(settings, client)
    finally:
        client.close()


def active_version(settings: Settings, redis_connection: RedisConnection) -> str | None:
    """The registry's active version, read once (blocking; for start-up)."""
    with registry(settings, redis_connection) as models:
        return models.active()


@dataclass
class RetrainerPorts:
    """What a retrainer runs on: the registry and its own coordination state."""

    registry: ModelRegistry
    state: RetrainerState
    client: RedisClient

    def close(self) -> None:
        """Release the connection."""
        self.client.close()


def retrainer_ports(settings: Settings, redis_connection: RedisConnection) -> RetrainerPorts:
    """A retrainer's ports on Redis (one connection)."""
    client = blocking_redis_client(settings, redis_connection)
    keys = RedisKeys(settings.redis.namespace)
    return RetrainerPorts(registry_on(settings, client), RedisRetrainerState(client, keys), client)


@dataclass
class NotifierPorts:
    """What ``streamlearn notify`` runs on: its state, on one Redis connection."""

    state: NotifierState
    client: RedisClient

    def close(self) -> None:
        """Release the connection."""
        self.client.close()


def notifier_ports(settings: Settings, redis_connection: RedisConnection) -> NotifierPorts:
    """The notifier's state on Redis."""
    client = blocking_redis_client(settings, redis_connection)
    return NotifierPorts(RedisNotifierState(client, RedisKeys(settings.redis.namespace)), client)


@contextmanager
def replay_ledger(settings: Settings, redis_connection: RedisConnection) -> Iterator[ReplayLedger]:
    """Where ``dlq replay`` marks the letters it replayed (Redis), on its own connection."""
    client = blocking_redis_client(settings, redis_connection)
    try:
        yield RedisReplayLedger(client, RedisKeys(settings.redis.namespace))
    finally:
        client.close()


@asynccontextmanager
async def stored_state(
    settings: Settings, redis_connection: RedisConnection
) -> AsyncIterator[StateStore]:
    """The learner's state store on its own fail-fast connection, for reading (status, drift
    report, progress probes)."""
    client = redis_client(settings, redis_connection)
    try:
        yield RedisStateStore(
            client, RedisKeys(settings.redis.namespace), TopicNames.from_settings(settings).outcomes
        )
    finally:
        await client.aclose()


def claimed_partitions(settings: Settings, redis_connection: RedisConnection) -> list[int]:
    """Input partitions some worker has claimed in the state store (blocking)."""

    async def read() -> list[int]:
        async with stored_state(settings, redis_connection) as store:
            return await store.partitions()

    return asyncio.run(read())


def kafka_connection(settings: Settings) -> KafkaConnection | None:
    """The configured cluster with its security settings; None when no broker is configured."""
    bootstrap = settings.kafka.bootstrap_servers
    return None if not bootstrap else KafkaConnection.from_settings(settings.kafka, bootstrap)


def redis_connection(settings: Settings) -> RedisConnection | None:
    """The configured Redis with its credentials and TLS; None when no Redis is configured."""
    url = settings.redis.url
    return None if not url else RedisConnection.from_settings(settings.redis, url)
