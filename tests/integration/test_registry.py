"""The registry: journaled changes, rollback rules, retention, and rebuilding a wiped Redis."""

from __future__ import annotations

import pytest
import redis

from models.adapters.redis_keys import RedisKeys
from models.adapters.redis_registry import ModelRegistry
from models.market import FEATURES, MarketSimulator
from models.registry import RegistryError
from models.store import ModelStore
from models.training import train_batch_model


@pytest.fixture
def registry(deploy):
    deployment = deploy()
    client = redis.Redis.from_url(deployment.endpoints.redis_url)
    store = ModelStore(deployment.settings.batch.store_path)
    yield ModelRegistry(client, RedisKeys(deployment.settings.redis.namespace), store), deployment
    client.close()


def _versions(store: ModelStore, n: int) -> list[str]:
    trained = train_batch_model(MarketSimulator(seed=1).frame(1500), FEATURES)
    return [store.save(trained.model_bytes(), {**trained.metadata, "n": i}) for i in range(n)]


def test_activate_stage_promote_and_rollback(registry):
    reg, _ = registry
    v1, v2, v3 = _versions(reg.store, 3)
    with pytest.raises(RegistryError, match="no earlier active version"):
        reg.rollback(None, "t", "nothing yet")
    reg.activate(v1, "t", "first")
    reg.activate(v2, "t", "second")
    reg.stage(v3, "t", "waiting")
    assert (reg.state().active, reg.state().staged) == (v2, v3)
    event = reg.promote(None, "t", "go")
    assert (event.version, event.previous) == (v3, v2)
    assert reg.state().staged is None
    back = reg.rollback(None, "t", "bad model")
    assert (back.action, back.version, back.previous) == ("rollback", v2, v3)
    assert reg.rollback(v1, "t", "further").version == v1
    with pytest.raises(RegistryError, match="already active"):
        reg.rollback(v1, "t", "again")
    with pytest.raises(RegistryError, match="never active"):
        reg.rollback(_versions(reg.store, 1)[0], "t", "new")
    assert [e.action for e in reg.state().history] == [
        "activate",
        "activate",
        "stage",
        "activate",
        "rollback",
        "rollback",
    ]


def test_retention_keeps_every_version_ever_active(registry):
    reg, _ = registry
    versions = _versions(reg.store, 8)
    reg.activate(versions[1], "t", "old but once active")
    reg.activate(versions[5], "t", "current")
    removed = reg.prune(keep_last=2)
    kept = set(reg.store.versions())
    assert kept == {versions[1], versions[5], versions[6], versions[7]}
    assert set(removed) == set(versions) - kept


def test_wiped_registry_is_rebuilt_from_the_journal(registry):
    reg, deployment = registry
    v1, v2, v3 = _versions(reg.store, 3)
    reg.activate(v1, "t", "a")
    reg.activate(v3, "t", "b")
    reg.stage(v2, "t", "c")
    before = reg.state()
    client = redis.Redis.from_url(deployment.endpoints.redis_url)
    client.delete(*RedisKeys(deployment.settings.redis.namespace).registry_keys())
    assert reg.active() is None
    result = deployment.cli("models", "rebuild")
    assert result.returncode == 0, result.stderr
    after = reg.state()
    assert (after.active, after.staged) == (before.active, before.staged) == (v3, v2)
    assert after.history == before.history
    assert f"active {v3}" in result.stdout
