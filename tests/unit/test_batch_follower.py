"""Following the active batch model when the model store is slow: scoring never waits long."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from models.adapters.directory_blobs import DirectoryBlobStore
from models.adapters.memory_pointer import MemoryPointer
from models.market import FEATURES, MarketSimulator
from models.store import ModelStore
from models.training import train_batch_model
from streams.batch_follower import BatchModelFollower, BatchModelHolder


class GatedBlobs(DirectoryBlobStore):
    """A directory store whose reads wait until the test opens the gate (a stalled S3)."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.gate.set()

    def get(self, name: str) -> bytes:
        self.gate.wait(10)
        return super().get(name)


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return train_batch_model(MarketSimulator(seed=2).frame(1500), FEATURES).model_bytes()


def test_a_stalled_load_is_waited_for_briefly_then_scoring_goes_on_degraded(tmp_path, model_bytes):
    async def scenario():
        blobs = GatedBlobs(tmp_path)
        store = ModelStore(blobs)
        v1, v2 = (store.save(model_bytes, {"n": i, "features": list(FEATURES)}) for i in (1, 2))
        pointer = MemoryPointer()
        follower = BatchModelFollower(BatchModelHolder(), pointer, store, FEATURES, load_wait_s=0.2)
        pointer.version = v1
        model, degraded = await follower.model_for_batch()
        assert (model.version, degraded) == (v1, None)

        blobs.gate.clear()  # the store stalls; v2 becomes active
        pointer.version = v2
        started = time.monotonic()
        model, degraded = await follower.model_for_batch()
        assert time.monotonic() - started < 1.0
        assert model.version == v1 and f"{v2} still loading" in degraded
        model, degraded = await follower.model_for_batch()  # the same load, not a second one
        assert model.version == v1 and degraded is not None
        assert len(follower._loading) == 1

        blobs.gate.set()  # the store answers again
        deadline = time.monotonic() + 10
        while (await follower.model_for_batch())[0].version != v2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert (await follower.model_for_batch())[1] is None

    asyncio.run(scenario())


def test_a_slow_load_never_replaces_a_newer_version(tmp_path, model_bytes):
    async def scenario():
        blobs = GatedBlobs(tmp_path)
        store = ModelStore(blobs)
        v1, v2, v3 = (
            store.save(model_bytes, {"n": i, "features": list(FEATURES)}) for i in (1, 2, 3)
        )
        pointer = MemoryPointer()
        follower = BatchModelFollower(BatchModelHolder(), pointer, store, FEATURES, load_wait_s=0.1)
        pointer.version = v1
        await follower.model_for_batch()
        blobs.gate.clear()
        pointer.version = v2
        await follower.model_for_batch()  # v2's load hangs
        pointer.version = v3
        await follower.model_for_batch()  # v3's load hangs too
        blobs.gate.set()
        deadline = time.monotonic() + 10
        while (await follower.model_for_batch())[0].version != v3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # both loads done by now
        assert follower.holder.version == v3

    asyncio.run(scenario())
