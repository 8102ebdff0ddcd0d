"""The registry through the CLI: rebuilding a wiped Redis from the journal.

(The registry's rules on every backend: ``tests/contract/test_registry.py``.)"""

from __future__ import annotations

import pytest

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
