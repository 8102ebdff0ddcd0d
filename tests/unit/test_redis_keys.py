"""The Redis key layout: what one transaction touches shares a cluster slot, and nothing more."""

from __future__ import annotations

from redis.crc import key_slot

from models.adapters.redis_keys import RedisKeys

KEYS = RedisKeys("prod")


def test_the_registry_and_its_fencing_counter_share_one_slot():
    together = (*KEYS.registry_keys(), KEYS.registry_lock, KEYS.retrainer_fence)
    assert len({key_slot(key.encode()) for key in together}) == 1


def test_partition_states_spread_over_slots():
    states = [KEYS.partition_state("trade-outcomes", p) for p in range(64)]
    assert len({key_slot(key.encode()) for key in states}) > 32  # no tag pins them together
    assert all("{" not in key for key in states)


def test_namespaces_keep_their_registries_apart():
    assert key_slot(KEYS.active_model.encode()) != key_slot(
        RedisKeys("staging").active_model.encode()
    )


def test_every_registry_key_has_a_legacy_name_under_the_namespace():
    legacy = KEYS.legacy_names()
    assert set(legacy.values()) == {*KEYS.registry_keys(), KEYS.retrainer_fence}
    assert all(old.startswith("prod:") and "{" not in old for old in legacy)
