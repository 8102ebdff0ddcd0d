"""The state-store contract, run on every adapter (Redis and the in-memory twin).

Claims fence earlier owners; a checkpoint writes all still-owned partitions at once and
reports the fenced ones; reads never claim; corrupt states are set aside, not fatal.
"""

from __future__ import annotations

import asyncio

from models.codec import encode_key_model
from models.keyed import KeyModel
from models.online import OnlineConfig
from models.state_store import PartitionWrite
from streams.online_state import OnlineState
from tests.contract.backends import run_then_close


def test_claim_bumps_the_epoch_and_reads_what_was_checkpointed(backend):
    async def scenario():
        store = backend.store()
        first = await store.claim(0)
        assert (first.epoch, first.applied_offset, first.states) == (1, -1, {})
        blob = encode_key_model(KeyModel.fresh(OnlineConfig()))
        assert await store.checkpoint({0: PartitionWrite(first.epoch, 41, {"K": blob})}) == set()
        again = await store.claim(0)
        assert (again.epoch, again.applied_offset, again.states) == (2, 41, {"K": blob})
        assert await store.partitions() == [0]

    run_then_close(backend, scenario)


def test_a_checkpoint_keeps_the_states_it_does_not_write(backend):
    async def scenario():
        store = backend.store()
        epoch = (await store.claim(2)).epoch
        await store.checkpoint({2: PartitionWrite(epoch, 1, {"A": b"a1", "B": b"b1"})})
        await store.checkpoint({2: PartitionWrite(epoch, 2, {"B": b"b2"})})
        snapshot = await store.read(2)
        assert (snapshot.applied_offset, snapshot.states) == (2, {"A": b"a1", "B": b"b2"})
        assert await store.applied_offset(2) == 2

    run_then_close(backend, scenario)


def test_a_checkpoint_of_many_keys_lands_whole(backend):
    """More keys than one Lua `unpack` takes (measured: 6,000 pairs fail, so the Redis script
    writes them in chunks)."""

    async def scenario():
        store = backend.store()
        epoch = (await store.claim(4)).epoch
        states = {f"K{i}": f"state-{i}".encode() for i in range(5_000)}
        assert await store.checkpoint({4: PartitionWrite(epoch, 4_999, states)}) == set()
        snapshot = await store.read(4)
        assert (snapshot.applied_offset, snapshot.states) == (4_999, states)

    run_then_close(backend, scenario)


def test_reading_never_claims_or_creates(backend):
    async def scenario():
        store = backend.store()
        empty = await store.read(7)
        assert (empty.epoch, empty.applied_offset, empty.states) == (0, -1, {})
        assert await store.applied_offset(7) == -1
        assert await store.partitions() == []
        await store.claim(3)
        assert (await store.read(3)).epoch == 1 and (await store.read(3)).epoch == 1
        assert await store.partitions() == [3]

    run_then_close(backend, scenario)


def test_a_zombie_checkpoint_is_refused_and_others_in_the_same_write_land(backend):
    async def scenario():
        old_owner, new_owner = backend.store(), backend.store()
        zombie0 = await old_owner.claim(0)
        zombie1 = await old_owner.claim(1)
        await new_owner.claim(0)  # a rebalance moved partition 0
        fenced = await old_owner.checkpoint(
            {0: PartitionWrite(zombie0.epoch, 99, {}), 1: PartitionWrite(zombie1.epoch, 7, {})}
        )
        assert fenced == {0}
        assert (await new_owner.read(0)).applied_offset == -1  # untouched by the zombie
        assert (await new_owner.read(1)).applied_offset == 7

    run_then_close(backend, scenario)


def test_corrupt_states_are_quarantined_and_replaced_not_fatal(backend):
    async def scenario():
        store = backend.store()
        state = OnlineState(store, OnlineConfig(), is_assigned=lambda p: p == 0)
        assert await state.ensure(1) is None  # not assigned here: never claimed
        loaded = await state.ensure(0)
        assert loaded is not None and loaded.epoch == 1
        assert await state.ensure(0) is loaded  # claimed once
        model = state.model_or_new(loaded, "K")
        model.learner.learn({"a": 1.0}, True)
        loaded.dirty.add("K")
        loaded.applied_offset = 5
        assert await state.checkpoint() == set()
        assert not loaded.has_changes()
        good = (await store.read(0)).states["K"]
        # NaN written as JSON null by an older version, and plain garbage: neither may stop a
        # worker that claims the partition (that was a crash loop across every worker).
        nan_state = good.replace(b'"intercept":', b'"intercept":null,"was":', 1)
        await backend.corrupt(0, {"K": b"garbage", "N": nan_state})
        quarantined = []
        fresh = OnlineState(
            store, OnlineConfig(), lambda p: True, on_quarantine=lambda: quarantined.append(1)
        )
        restored = await fresh.ensure(0)
        assert restored is not None and restored.applied_offset == 5
        assert len(quarantined) == 2
        assert restored.models["K"].updates == 0 and restored.models["N"].updates == 0
        aside = await backend.quarantined(0)
        assert aside["K"][0] == b"garbage" and aside["N"][0] == nan_state
        assert "not JSON" in aside["K"][1] and "intercept" in aside["N"][1]
        assert await fresh.checkpoint() == set()  # the fresh states replace the bad ones
        again = OnlineState(store, OnlineConfig(), is_assigned=lambda p: True)
        assert (await again.ensure(0)).models["K"].updates == 0

    run_then_close(backend, scenario)


def test_concurrent_ensures_claim_once(backend):
    async def scenario():
        store = backend.store()
        state = OnlineState(store, OnlineConfig(), is_assigned=lambda p: True)
        results = await asyncio.gather(*(state.ensure(3) for _ in range(10)))
        assert all(r is results[0] for r in results)
        assert (await store.read(3)).epoch == 1

    run_then_close(backend, scenario)


def test_a_fenced_partition_stays_blocked_until_reassigned(backend):
    async def scenario():
        store_a, store_b = backend.store(), backend.store()
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

    run_then_close(backend, scenario)
