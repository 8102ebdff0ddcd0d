"""The start-up heap freeze that keeps full garbage collections off the event loop."""

from __future__ import annotations

import gc

from app.heap import freeze_startup_heap


def _tracked(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_objects_alive_at_freeze_leave_the_collected_generations():
    survivor = [[]]  # a container the collector tracks, like the objects of imported modules
    gc.collect()
    assert _tracked(survivor)
    try:
        frozen = freeze_startup_heap()
        # Frozen objects that die leave the count (another thread of the session -- the
        # embedded services' pumps -- may drop some between the two reads); none joins it.
        assert 0 < gc.get_freeze_count() <= frozen
        assert not _tracked(survivor)  # full collections no longer walk it
        newcomer = [[]]
        assert _tracked(newcomer)  # what is made later is collected as usual
    finally:
        gc.unfreeze()
    assert _tracked(survivor)
