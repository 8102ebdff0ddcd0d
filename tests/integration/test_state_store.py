"""Learner state in Redis: claims fence earlier owners, checkpoints are atomic and guarded."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from models.codec import encode_key_model
from models.keyed import KeyModel
from models.online import OnlineConfig
from models.redis_keys import RedisKeys
from models.state_store import PartitionStateStore, PartitionWrite
from streams.online_state import OnlineState


def _run(coro):
    return asyncio.run(coro)


async def _stores(url: str, n: int = 2) -> tuple[list[PartitionStateStore], list[aioredis.Redis]]:
    keys = RedisKeys(f"test-{uuid.uuid4().hex[:8]}")
    clients = [aioredis.Redis.from_url(url) for _ in range(n)]
    return [PartitionStateStore(c, keys, "outcomes") for c in clients], clients


def test_claim_bumps_the_epoch_and_reads_what_was_checkpointed(endpoints):
    async def scenario():
        (store, _), clients = await _stores(endpoints.redis_url)
        first = await store.claim(0)
        assert (first.epoch, first.applied_offset, first.states) == (1, -1, {})
        blob = encode_key_model(KeyModel.fresh(OnlineConfig()))
        fenced = await store.checkpoint({0: PartitionWrite(first.epoch, 41, {"K": blob})})
        assert fenced == set()
        again = await store.claim(0)
        assert (again.epoch, again.applied_offset, again.states) == (2, 41, {"K": blob})
        assert await store.partitions() == [0]
        for c in clients:
            await c.aclose()

    _run(scenario())


def test_a_zombie_checkpoint_is_refused_and_others_in_the_same_write_land(endpoints):
    async def scenario():
        (old_owner, new_owner), clients = await _stores(endpoints.redis_url)
        zombie0 = await old_owner.claim(0)
        zombie1 = await old_owner.claim(1)
        await new_owner.claim(0)  # a rebalance moved partition 0
        fenced = await old_owner.checkpoint(
            {0: PartitionWrite(zombie0.epoch, 99, {}), 1: PartitionWrite(zombie1.epoch, 7, {})}
        )
        assert fenced == {0}
        assert (await new_owner.read(0)).applied_offset == -1  # untouched by the zombie
        assert (await new_owner.read(1)).applied_offset == 7
        for c in clients:
            await c.aclose()

    _run(scenario())


def test_online_state_claims_only_assigned_partitions_and_quarantines_corrupt_state(endpoints):
    async def scenario():
        (store, _), clients = await _stores(endpoints.redis_url)
        state = OnlineState(store, OnlineConfig(), is_assigned=lambda p: p == 0)
        assert await state.ensure(1) is None
        loaded = await state.ensure(0)
        assert loaded is not None and loaded.epoch == 1
        assert await state.ensure(0) is loaded  # claimed once
        model = state.model_or_new(loaded, "K")
        model.learner.learn({"a": 1.0}, True)
        loaded.dirty.add("K")
        loaded.applied_offset = 5
        assert await state.checkpoint() == set()
        assert not loaded.has_changes()
        keys = RedisKeys(store._keys.namespace)
        state_key = keys.partition_state("outcomes", 0)
        good = await clients[0].hget(state_key, "k:K")
        # NaN written as JSON null by an older version, and plain garbage: neither may stop a
        # worker that claims the partition (that was a crash loop across every worker).
        nan_state = good.replace(b'"intercept":', b'"intercept":null,"was":', 1)
        await clients[0].hset(state_key, mapping={"k:K": b"garbage", "k:N": nan_state})
        quarantined = []
        fresh_state = OnlineState(
            store,
            OnlineConfig(),
            is_assigned=lambda p: True,
            on_quarantine=lambda: quarantined.append(1),
        )
        restored = await fresh_state.ensure(0)
        assert restored is not None and restored.applied_offset == 5
        assert len(quarantined) == 2
        assert restored.models["K"].updates == 0 and restored.models["N"].updates == 0
        aside = await clients[0].hgetall(keys.quarantine("outcomes", 0))
        assert aside[b"K"] == b"garbage" and aside[b"N"] == nan_state
        assert b"not JSON" in aside[b"K:reason"] and b"intercept" in aside[b"N:reason"]
        assert await fresh_state.checkpoint() == set()  # the fresh states replace the bad ones
        again = OnlineState(store, OnlineConfig(), is_assigned=lambda p: True)
        assert (await again.ensure(0)).models["K"].updates == 0
        for c in clients:
            await c.aclose()

    _run(scenario())


def test_concurrent_ensures_claim_once(endpoints):
    async def scenario():
        (store, _), clients = await _stores(endpoints.redis_url)
        state = OnlineState(store, OnlineConfig(), is_assigned=lambda p: True)
        results = await asyncio.gather(*(state.ensure(3) for _ in range(10)))
        assert all(r is results[0] for r in results)
        assert (await store.read(3)).epoch == 1
        for c in clients:
            await c.aclose()

    _run(scenario())


def test_a_fenced_partition_stays_blocked_until_reassigned(endpoints):
    async def scenario():
        (store_a, store_b), clients = await _stores(endpoints.redis_url)
        worker_a = OnlineState(store_a, OnlineConfig(), is_assigned=lambda p: True)
        worker_b = OnlineState(store_b, OnlineConfig(), is_assigned=lambda p: True)
        mine = await worker_a.ensure(0)
        await worker_b.ensure(0)  # the group moved partition 0 to B
        mine.applied_offset = 10
        assert await worker_a.checkpoint() == {0}
        assert await worker_a.ensure(0) is None  # no ping-pong of claims
        assert (await store_a.read(0)).applied_offset == -1
        worker_a.unblock([0])  # a later rebalance gives it back
        again = await worker_a.ensure(0)
        assert again is not None and again.epoch == 3
        for c in clients:
            await c.aclose()

    _run(scenario())
