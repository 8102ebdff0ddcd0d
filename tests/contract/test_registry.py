"""The registry contract: its rules on every backend (Redis and the in-memory twin).

Activate / stage / promote / rollback, retention, fencing and rebuilding from the journal run
through :class:`~models.registry.ModelRegistry` on each :class:`~models.registry.RegistryBackend`
adapter; a twin that drifts from Redis fails the test Redis passes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from models.adapters.directory_blobs import DirectoryBlobStore
from models.market import FEATURES, MarketSimulator
from models.registry import (
    FencedError,
    ModelRegistry,
    RegistryError,
    RegistryEvent,
    RegistryState,
)
from models.store import ModelStore
from models.training import train_batch_model


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return train_batch_model(MarketSimulator(seed=1).frame(1500), FEATURES).model_bytes()


@pytest.fixture
def registry(coordination, tmp_path) -> ModelRegistry:
    return ModelRegistry(
        coordination.registry(), ModelStore(DirectoryBlobStore(tmp_path / "store"))
    )


@pytest.fixture
def new_versions(registry, model_bytes) -> Callable[[int], list[str]]:
    """Store ``n`` new (valid) versions; returns their ids."""
    return lambda n: [registry.store.save(model_bytes, {"n": i}) for i in range(n)]


def test_activate_stage_promote_and_rollback(registry, new_versions):
    v1, v2, v3 = new_versions(3)
    assert registry.state() == RegistryState() and registry.active() is None
    with pytest.raises(RegistryError, match="no earlier active version"):
        registry.rollback(None, "t", "nothing yet")
    with pytest.raises(RegistryError, match="nothing is staged"):
        registry.promote(None, "t", "nothing staged")
    registry.activate(v1, "t", "first")
    registry.activate(v2, "t", "second")
    registry.stage(v3, "t", "waiting")
    assert (registry.state().active, registry.state().staged) == (v2, v3)
    event = registry.promote(None, "t", "go")
    assert (event.version, event.previous) == (v3, v2)
    assert registry.state().staged is None and registry.active() == v3
    back = registry.rollback(None, "t", "bad model")
    assert (back.action, back.version, back.previous) == ("rollback", v2, v3)
    assert registry.rollback(v1, "t", "further").version == v1
    with pytest.raises(RegistryError, match="already active"):
        registry.rollback(v1, "t", "again")
    with pytest.raises(RegistryError, match="never active"):
        registry.rollback(new_versions(1)[0], "t", "new")
    state = registry.state()
    assert [e.action for e in state.history] == [
        "activate",
        "activate",
        "stage",
        "activate",
        "rollback",
        "rollback",
    ]
    assert state.history == registry.journal.events(), "the journal says what the backend says"


def test_activating_an_unknown_or_damaged_version_changes_nothing(registry, new_versions):
    (good,) = new_versions(1)
    registry.activate(good, "t", "first")
    with pytest.raises(Exception, match="no-such-version"):
        registry.activate("no-such-version", "t", "typo")
    assert registry.active() == good and len(registry.state().history) == 1


def test_activating_the_staged_version_by_name_clears_the_stage(registry, new_versions):
    v1, v2 = new_versions(2)
    registry.stage(v1, "t", "waiting")
    registry.activate(v2, "t", "another one")
    assert registry.state().staged == v1, "activating another version keeps the stage"
    registry.activate(v1, "t", "by name")
    assert (registry.active(), registry.state().staged) == (v1, None)


def test_retention_keeps_every_version_ever_active(registry, new_versions):
    versions = new_versions(8)
    registry.activate(versions[1], "t", "old but once active")
    registry.activate(versions[5], "t", "current")
    removed = registry.prune(keep_last=2)
    kept = set(registry.store.versions())
    assert kept == {versions[1], versions[5], versions[6], versions[7]}
    assert set(removed) == set(versions) - kept


def test_a_stale_fencing_token_cannot_change_the_registry(registry, coordination, new_versions):
    first, second = new_versions(2)
    other = ModelRegistry(coordination.registry(), registry.store)  # another process
    old = registry.backend.take_fence()
    registry.activate(first, "old leader", "before the pause", old)
    new = other.backend.take_fence()  # another retrainer took the lead
    assert new.token > old.token
    assert not registry.backend.fence_is_current(old) and other.backend.fence_is_current(new)
    with pytest.raises(FencedError, match="stale"):
        registry.activate(second, "old leader", "after the pause", old)
    with pytest.raises(FencedError, match="stale"):
        registry.stage(second, "old leader", "after the pause", old)
    with pytest.raises(FencedError):
        registry.check_fence(old)
    assert registry.active() == first and registry.state().staged is None
    other.activate(second, "new leader", "it leads", new)
    assert registry.active() == second
    assert [e.by for e in registry.journal.events()] == ["old leader", "new leader"]


def test_a_lost_registry_is_rebuilt_from_the_journal(registry, new_versions):
    v1, v2, v3 = new_versions(3)
    registry.activate(v1, "t", "a")
    registry.activate(v3, "t", "b")
    registry.stage(v2, "t", "c")
    before = registry.state()
    registry.backend.replace(RegistryState())  # Redis lost the keys
    assert registry.active() is None and registry.state().history == []
    rebuilt = registry.rebuild()
    assert registry.state() == before == rebuilt


def test_a_rebuild_from_a_journal_that_lacks_live_changes_is_refused(
    registry, coordination, new_versions, tmp_path
):
    """A rebuild run against another (say, an empty local) store must not wipe the live
    registry because its journal looks empty; only ``force`` overwrites."""
    v1, v2 = new_versions(2)
    registry.activate(v1, "t", "a")
    registry.activate(v2, "t", "b")
    live = registry.state()
    elsewhere = ModelRegistry(registry.backend, ModelStore(DirectoryBlobStore(tmp_path / "empty")))
    with pytest.raises(RegistryError, match="lacks"):
        elsewhere.rebuild()
    assert registry.state() == live, "a refused rebuild changed nothing"
    assert elsewhere.rebuild(force=True) == RegistryState()
    assert registry.state() == RegistryState()
    assert registry.rebuild() == live, "the right journal restores everything again"


def test_a_rebuild_over_a_partial_registry_completes_it(registry, new_versions):
    v1, v2 = new_versions(2)
    registry.activate(v1, "t", "a")
    first = registry.state()
    registry.activate(v2, "t", "b")
    full = registry.state()
    registry.backend.replace(first)  # an old backup of Redis restored
    assert registry.rebuild() == full


def test_journal_entries_are_numbered_objects_in_order(registry, new_versions):
    v1, v2, v3 = new_versions(3)
    for version in (v1, v2, v3):
        registry.activate(version, "t", "go")
    names = registry.store.blobs.names("registry/")
    assert names == [f"registry/{n:012d}.json" for n in (1, 2, 3)]
    assert [e.version for e in registry.journal.events()] == [v1, v2, v3]


def test_a_journal_written_before_numbered_entries_is_read_first(registry, new_versions):
    """Stores from before the ``registry/`` layout kept one ``registry.jsonl``."""
    v1, v2 = new_versions(2)
    old = RegistryEvent("activate", v1, None, "2026-01-01T00:00:00+00:00", "t", "old")
    registry.store.blobs.put("registry.jsonl", old.to_json() + b"\n" + b"{torn")
    registry.backend.replace(RegistryState(active=v1, history=[old]))
    registry.activate(v2, "t", "new")
    events = registry.journal.events()
    assert [e.version for e in events] == [v1, v2]
    registry.backend.replace(RegistryState())
    assert registry.rebuild().active == v2


def test_the_journal_fetches_each_entry_once(registry, new_versions):
    """Entries are create-only, so reading the journal again (every retention pass, every
    rebuild) fetches only entries it has not seen: on S3 each fetch is a request."""
    fetched: list[str] = []
    blobs = registry.journal.blobs
    original = blobs.get

    def counting_get(name: str) -> bytes:
        fetched.append(name)
        return original(name)

    blobs.get = counting_get
    v1, v2, v3 = new_versions(3)
    registry.activate(v1, "t", "a")
    registry.activate(v2, "t", "b")
    assert [e.version for e in registry.journal.events()] == [v1, v2]
    registry.prune(keep_last=10)
    registry.activate(v3, "t", "c")
    assert [e.version for e in registry.journal.events()] == [v1, v2, v3]
    entries = [name for name in fetched if name.startswith("registry/")]
    assert sorted(entries) == sorted(set(entries)) and len(entries) == 3
