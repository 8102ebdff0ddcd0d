"""The composition root: settings -> the models' configs, and the adapters an engine runs on.

Every mapping from a settings group to a ``models`` config object lives here, once; every
Redis adapter a worker uses is created here. Tests and benchmarks that need no Redis assemble
an :class:`~streams.engine.Engine` from the in-memory twins instead (``memory_ports``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from pydantic import BaseModel
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

T = TypeVar("T")


def _mapped(config: type[T], group: BaseModel, **extra: Any) -> T:
    """A ``models`` config from the settings group fields of the same names (+ ``extra``);
    fields the settings do not expose keep the config's defaults."""
    named = {
        f.name: getattr(group, f.name) for f in fields(config) if f.name in type(group).model_fields
    }
    return config(**named, **extra)


def online_config(settings: Settings) -> OnlineConfig:
    """The learner's hyper-parameters from the ``online`` settings."""
    return _mapped(OnlineConfig, settings.online)


def drift_config(settings: Settings) -> DriftConfig | None:
    """The drift monitors' settings, or None when drift detection is off."""
    return _mapped(DriftConfig, settings.drift) if settings.drift.enabled else None


def contract_spec(settings: Settings) -> ContractSpec:
    """What the decoders check, from the ``model`` and ``limits`` settings."""
    return _mapped(
        ContractSpec,
        settings.limits,
        features=settings.model.features,
        key_field=settings.model.key_field,
    )


def train_config(settings: Settings) -> TrainConfig:
    """Training hyper-parameters and split from the ``retrain`` settings."""
    return _mapped(TrainConfig, settings.retrain)


def gate_config(settings: Settings) -> GateConfig:
    """The champion/challenger gate from the ``retrain`` settings."""
    return _mapped(GateConfig, settings.retrain, n_resamples=settings.retrain.bootstrap_resamples)


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
