"""The registry through the CLI: rebuilding a wiped Redis from the journal.

(The registry's rules on every backend: ``tests/contract/test_registry.py``.)"""

from __future__ import annotations

import pytest

from models.adapters.redis_keys import RedisKeys
from models.market import FEATURES, MarketSimulator
from models.registry import RegistryState
from models.store import ModelStore
from models.training import train_batch_model


@pytest.fixture
def registry(deploy):
    deployment = deploy()
    yield deployment.registry(), deployment


def _versions(store: ModelStore, n: int) -> list[str]:
    trained = train_batch_model(MarketSimulator(seed=1).frame(1500), FEATURES)
    return [store.save(trained.model_bytes(), {**trained.metadata, "n": i}) for i in range(n)]


def test_wiped_registry_is_rebuilt_from_the_journal(registry):
    reg, deployment = registry
    v1, v2, v3 = _versions(reg.store, 3)
    reg.activate(v1, "t", "a")
    reg.activate(v3, "t", "b")
    reg.stage(v2, "t", "c")
    before = reg.state()
    reg.backend.replace(RegistryState())  # the registry's keys are gone from Redis
    assert reg.active() is None
    result = deployment.cli("models", "rebuild")
    assert result.returncode == 0, result.stderr
    after = reg.state()
    assert (after.active, after.staged) == (before.active, before.staged) == (v3, v2)
    assert after.history == before.history
    assert f"active {v3}" in result.stdout


def test_an_upgraded_redis_keeps_its_registry(registry):
    """Registry keys written by a version before the hash-tagged names (and the fencing
    counter) are adopted by the first process that opens the registry: the active model,
    the staged one, the history and the fencing token all carry over."""
    reg, deployment = registry
    v1, v2 = _versions(reg.store, 2)
    reg.activate(v1, "t", "a")
    reg.stage(v2, "t", "b")
    before = reg.state()
    keys = RedisKeys(deployment.settings.redis.namespace)
    client = deployment.redis()
    client.set(keys.retrainer_fence, 41)
    for old, new in keys.legacy_names().items():  # back to the names an old version wrote
        client.rename(new, old)
    assert client.exists(*keys.legacy_names().values()) == 0

    listed = deployment.cli("models", "list")
    assert listed.returncode == 0, listed.stderr
    assert v1 in listed.stdout
    assert client.exists(*keys.legacy_names()) == 0
    after = reg.state()
    assert (after.active, after.staged, after.history) == (before.active, v2, before.history)
    assert int(client.get(keys.retrainer_fence)) == 41
    assert deployment.registry().backend.adopt_legacy_keys() == []  # idempotent
