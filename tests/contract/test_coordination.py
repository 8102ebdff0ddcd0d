"""The coordination contracts (retrain guard, retrainer state and leader lease), on every
adapter (Redis and the in-memory twins)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from models.coordination import LeaseLostError


def test_the_retrain_guard_lets_one_request_through_per_period(coordination):
    async def scenario():
        worker_a, worker_b = coordination.guard(), coordination.guard()
        assert await worker_a.claim("r1", ttl_s=1)
        assert await worker_a.claim("r1", ttl_s=1), "the holder may publish again (a replay)"
        assert not await worker_b.claim("r2", ttl_s=1)
        await asyncio.sleep(1.2)
        assert await worker_b.claim("r2", ttl_s=1), "free again once the period is over"
        assert not await worker_a.claim("r1", ttl_s=1)

    asyncio.run(scenario())


def test_the_retrainer_state_survives_the_retrainer(coordination):
    first = coordination.retrainer_state()
    assert (first.committed_offset(), first.last_finished()) == (0, None)
    first.commit_offset(17)
    first.mark_finished(1_700_000_000.5)
    successor = coordination.retrainer_state()
    assert (successor.committed_offset(), successor.last_finished()) == (17, 1_700_000_000.5)


def test_trigger_marks_are_merged_and_survive_the_retrainer(coordination):
    first = coordination.retrainer_state()
    assert first.trigger_marks() == {}
    first.set_trigger_marks({"schedule_next_s": 1_800_000_000.25, "outcomes_seen": 1200})
    first.set_trigger_marks({"outcomes_seen": 5200})
    first.set_trigger_marks({})
    successor = coordination.retrainer_state()
    assert successor.trigger_marks() == {"schedule_next_s": 1_800_000_000.25, "outcomes_seen": 5200}


#: Long enough that no lease in these tests expires unless one waits for it.
LEASE_S = 60.0


def test_one_leader_at_a_time_and_a_lost_lease_is_noticed(coordination):
    leader = coordination.retrainer_state().leader_lease(LEASE_S)
    standby = coordination.retrainer_state().leader_lease(LEASE_S)
    assert leader.acquire(blocking_timeout=1)
    assert not standby.acquire(blocking_timeout=0.2)
    leader.release()
    assert standby.acquire(blocking_timeout=1)
    with pytest.raises(LeaseLostError):
        leader.reacquire()
    leader.release()  # releasing a lost lease does not take it from the new holder
    assert not coordination.retrainer_state().leader_lease(LEASE_S).acquire(blocking_timeout=0.2)
    standby.release()


def test_the_lease_is_renewed_from_another_thread(coordination):
    """The keep-alive thread renews a lease another thread took (with redis-py's default
    thread-local locks the renewal raised, and the lease expired under a working leader)."""
    lease = coordination.retrainer_state().leader_lease(LEASE_S)
    assert lease.acquire(blocking_timeout=1)
    errors: list[BaseException] = []

    def renew() -> None:
        try:
            lease.reacquire()
        except BaseException as exc:  # the keep-alive thread's view
            errors.append(exc)

    thread = threading.Thread(target=renew)
    thread.start()
    thread.join()
    assert errors == []
    started = time.monotonic()
    assert not coordination.retrainer_state().leader_lease(LEASE_S).acquire(blocking_timeout=0.2)
    assert time.monotonic() - started < 5
    lease.release()


def test_a_lease_nobody_renews_expires_and_a_standby_takes_it(coordination):
    dead = coordination.retrainer_state().leader_lease(0.5)
    assert dead.acquire(blocking_timeout=1)
    standby = coordination.retrainer_state().leader_lease(0.5)
    assert not standby.acquire(blocking_timeout=0.1)
    assert standby.acquire(blocking_timeout=2)  # the holder died: its lease ran out
    with pytest.raises(LeaseLostError):
        dead.reacquire()
    standby.reacquire()  # renewing pushes the expiry on
    time.sleep(0.3)
    standby.reacquire()
    time.sleep(0.3)
    assert not coordination.retrainer_state().leader_lease(0.5).acquire(blocking_timeout=0.1)
    standby.release()


def test_the_notifier_state_survives_the_notifier(coordination):
    first = coordination.notifier_state()
    assert first.offsets() == {} and not first.delivered("a1", "ops")
    first.commit_offsets({"alerts:0": 4, "updates:0": 2})
    first.commit_offsets({"alerts:0": 9})
    first.mark_delivered("a1", "ops", ttl_s=60)
    successor = coordination.notifier_state()
    assert successor.offsets() == {"alerts:0": 9, "updates:0": 2}
    assert successor.delivered("a1", "ops")
    assert not successor.delivered("a1", "pager") and not successor.delivered("a2", "ops")


def test_delivered_marks_expire(coordination):
    state = coordination.notifier_state()
    state.mark_delivered("short", "ops", ttl_s=0.05)
    deadline = time.monotonic() + 5
    while state.delivered("short", "ops"):
        assert time.monotonic() < deadline, "the mark never expired"
        time.sleep(0.02)
