"""The dedupe window answers exactly as a plain "last N ids" list would, whatever the ids."""

from __future__ import annotations

import random
from collections import deque

import pytest

from models.dedupe import RecentIds, id_hash


@pytest.mark.parametrize("size", [1, 3, 16, 1000])
def test_membership_equals_the_last_n_ids(size):
    rng = random.Random(size)
    recent, reference = RecentIds(size), deque(maxlen=size)
    # Ids from a small pool repeat often; crafted hashes share filter slots (low bits equal).
    pool = [id_hash(f"o-{i}") for i in range(3 * size + 5)]
    pool += [(i << 40) | 7 for i in range(-20, 20)]
    for step in range(20 * size + 200):
        hashed = rng.choice(pool)
        assert (hashed in recent) == (hashed in reference), step
        if rng.random() < 0.7:
            recent.add(hashed)
            reference.append(hashed)
    restored = RecentIds.decode(recent.encode(), size)
    assert all((h in restored) == (h in reference) for h in pool)


def test_many_ids_in_one_filter_slot_never_wrap_a_counter():
    size = 70_000  # > 65,535: the wide counters
    recent = RecentIds(size)
    same_slot = [(i << 32) | 5 for i in range(size + 10)]
    for hashed in same_slot:
        recent.add(hashed)
    assert same_slot[0] not in recent and same_slot[-1] in recent and same_slot[10] in recent
