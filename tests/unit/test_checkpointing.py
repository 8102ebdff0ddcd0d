"""The checkpoint protocol's pieces without a broker: guard, backoff, protocol order, outages."""

from __future__ import annotations

import asyncio

import pytest

from models.adapters.memory_state_store import MemoryStateStore
from models.online import OnlineConfig
from streams.checkpointing import (
    Admission,
    Backoff,
    Checkpointer,
    OutputsLostError,
    ResumeGuard,
)
from streams.online_state import OnlineState
from streams.telemetry import EngineMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_guard_passes_only_once_the_consumer_reads_from_the_resume_point():
    clock = Clock()
    guard = ResumeGuard(min_interval_s=0.2, max_seeks=3, clock=clock)
    assert guard.admit(0, 99) is Admission.PASS  # not claimed recently: nothing to guard
    guard.expect(0, 10)
    assert guard.admit(0, 15) is Admission.DROP  # stale, and too soon to seek again
    clock.now = 0.3
    assert guard.admit(0, 15) is Admission.RESEEK
    guard.sought(0)
    assert guard.admit(0, 16) is Admission.DROP
    assert guard.admit(0, 7) is Admission.PASS  # a replay proves the position
    assert guard.admit(0, 30) is Admission.PASS  # and from then on all is in order


def test_the_guard_accepts_a_real_gap_after_repeated_seeks():
    clock = Clock()
    guard = ResumeGuard(min_interval_s=0.0, max_seeks=3, clock=clock)
    guard.expect(1, 10)  # seek 1
    for _ in range(2):
        assert guard.admit(1, 12) is Admission.RESEEK
        guard.sought(1)  # seeks 2 and 3
    assert guard.admit(1, 12) is Admission.PASS  # offsets 10, 11 do not exist (markers)


def test_backoff_grows_caps_and_measures_the_outage():
    clock = Clock()
    backoff = Backoff(initial_s=0.1, max_s=1.0, clock=clock)
    delays = [backoff.failed() for _ in range(6)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert not backoff.ready
    clock.now = 5.0
    assert backoff.ready and backoff.failing_for_s == 5.0
    backoff.succeeded()
    assert backoff.failures == 0 and backoff.failing_for_s == 0.0


class RecordingSender:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.fail = False

    async def send_all(self, records) -> None:
        self.events.append("send")

    def mark(self) -> str:
        self.events.append("mark")
        return "m"

    async def flush(self, mark=None) -> None:
        self.events.append("flush")
        if self.fail:
            raise ConnectionError("broker down")

    def discard(self) -> None:
        self.events.append("discard")


def _checkpointer(store: MemoryStateStore, sender: RecordingSender) -> Checkpointer:
    state = OnlineState(store, OnlineConfig(), is_assigned=lambda p: True)
    return Checkpointer(state, sender, EngineMetrics(), every_outcomes=1, interval_s=0.0)


def test_outputs_are_confirmed_before_state_is_written_and_a_store_outage_pauses():
    async def scenario():
        store, sender = MemoryStateStore(), RecordingSender()
        checkpointer = _checkpointer(store, sender)
        resume, missing = await checkpointer.claim([0])
        assert resume == {0: 0} and not missing
        loaded = checkpointer.state.partitions[0]
        loaded.applied_offset = 4
        checkpointer.applied(5)
        store.fail = True  # Redis unreachable
        result = await checkpointer.checkpoint()
        assert sender.events == ["mark", "flush"] and not result.stored
        assert not checkpointer.store_available and not checkpointer.due()  # backing off
        assert store.hashes[0]["offset"] == -1  # nothing written, state kept in memory
        store.fail = False
        checkpointer.backoff.next_try = 0.0
        assert checkpointer.due()
        result = await checkpointer.checkpoint()
        assert result.stored and result.committed == {0: 4}
        assert store.hashes[0]["offset"] == 4 and checkpointer.store_available

    asyncio.run(scenario())


def test_unconfirmed_outputs_write_nothing_and_ask_for_a_reset():
    async def scenario():
        store, sender = MemoryStateStore(), RecordingSender()
        checkpointer = _checkpointer(store, sender)
        await checkpointer.claim([0])
        checkpointer.state.partitions[0].applied_offset = 9
        sender.fail = True
        with pytest.raises(OutputsLostError):
            await checkpointer.checkpoint()
        assert store.hashes[0]["offset"] == -1
        checkpointer.reset()
        assert checkpointer.state.partitions == {} and sender.events[-1] == "discard"

    asyncio.run(scenario())


def test_a_store_outage_during_a_claim_leaves_the_partition_unclaimed():
    async def scenario():
        store, sender = MemoryStateStore(), RecordingSender()
        checkpointer = _checkpointer(store, sender)
        store.fail = True
        resume, missing = await checkpointer.claim([0, 1])
        assert resume == {} and missing == {0, 1} and not checkpointer.store_available

    asyncio.run(scenario())


class CollectingSender(RecordingSender):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    async def send_all(self, records) -> None:
        self.sent += [record.value for record in records]


def test_only_outbox_entries_a_written_checkpoint_covers_are_published():
    """An alert queued while a checkpoint is being written is not in it: publishing it with
    that checkpoint's outbox (and clearing it) lost it, or -- after a crash before its own
    checkpoint -- let the replay raise it a second time."""
    from models.adapters.memory_coordination import MemoryRetrainGuard
    from streams.alerts import ALERTS, outbox_entry
    from streams.outbox import OutboxFlusher

    async def scenario():
        store = MemoryStateStore()
        state = OnlineState(store, OnlineConfig(), is_assigned=lambda p: True)
        loaded = await state.ensure(0)
        model = state.model_or_new(loaded, "K")

        def queue(alert_id: str) -> None:  # what the learner does when a monitor fires
            model.outbox.append(outbox_entry(ALERTS, alert_id, "K", {"alert_id": alert_id}))
            state.note_outbox(0, "K")
            loaded.dirty.add("K")

        sender = CollectingSender()
        flusher = OutboxFlusher(sender, {ALERTS: "alerts"}, "unused:9092", MemoryRetrainGuard(), 60)
        queue("a1")
        snapshot = state.snapshot()
        queue("a2")  # learned while the write is in flight
        assert await state.write(snapshot) == set()
        assert await flusher.flush(state, state.due_outbox(snapshot)) == 1
        assert sender.sent == [b'{"alert_id":"a1"}']
        assert [e["id"] for e in model.outbox] == ["a2"] and state.has_outbox
        stored = (await store.read(0)).states["K"]
        assert b'"a1"' in stored and b'"a2"' not in stored  # a2 waits for its own checkpoint
        second = state.snapshot()
        assert await state.write(second) == set()
        assert await flusher.flush(state, state.due_outbox(second)) == 1
        assert sender.sent[-1] == b'{"alert_id":"a2"}' and model.outbox == []

    asyncio.run(scenario())
