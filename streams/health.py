"""Liveness of a worker's loops: each loop beats; a loop that stopped or went quiet is unhealthy.

``/health`` answers from this (is the process doing its work?) and ``/ready`` adds the
dependencies (Redis, the broker, claimed partitions). A loop that ends with an error records
it here instead of disappearing silently, so the views say which loop died and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: A partition with records waiting whose applied offset has not moved for this long is stalled.
STALL_S = 30.0


@dataclass
class LoopState:
    """What is known of one loop."""

    last_beat: float
    stopped: str | None = None


class Health:
    """Beats and stops of named loops (``beat`` is cheap: one dict store)."""

    def __init__(self, stale_after_s: float = 15.0, clock: Callable[[], float] = time.monotonic):
        self._loops: dict[str, LoopState] = {}
        self._stale_after_s = stale_after_s
        self._clock = clock
        self.problems: dict[str, str] = {}

    def beat(self, loop: str) -> None:
        """The loop is alive and went round once more."""
        state = self._loops.get(loop)
        if state is None:
            self._loops[loop] = LoopState(self._clock())
        else:
            state.last_beat = self._clock()

    def stopped(self, loop: str, reason: str) -> None:
        """The loop ended (and will not come back by itself)."""
        self._loops.setdefault(loop, LoopState(self._clock())).stopped = reason

    def problem(self, name: str, reason: str | None) -> None:
        """Set (or clear, with None) a named condition that makes the worker unhealthy."""
        if reason is None:
            self.problems.pop(name, None)
        else:
            self.problems[name] = reason

    def report(self) -> dict[str, Any]:
        """``{"ok": bool, "loops": {...}, "problems": {...}}`` for the HTTP views."""
        now = self._clock()
        loops = {}
        ok = bool(self._loops) and not self.problems
        for name, state in self._loops.items():
            age = now - state.last_beat
            alive = state.stopped is None and age <= self._stale_after_s
            ok = ok and alive
            loops[name] = {
                "alive": alive,
                "seconds_since_beat": round(age, 3),
                "stopped": state.stopped,
            }
        return {"ok": ok, "loops": loops, "problems": dict(self.problems)}


def stalled_partitions(
    applied: Mapping[int, tuple[int, float]],
    highwaters: Mapping[int, int | None],
    now: float,
    stall_s: float = STALL_S,
) -> dict[int, str]:
    """Partitions that have records waiting but made no progress for ``stall_s`` seconds.

    ``applied`` maps a partition to (applied offset, monotonic time it last moved);
    ``highwaters`` to the broker's high watermark as last fetched (None if unknown).

    >>> stalled_partitions({0: (9, 0.0), 1: (4, 0.0)}, {0: 10, 1: 20}, now=60.0)
    {1: '15 records waiting, no progress for 60 s'}
    """
    found = {}
    for partition, (offset, moved_at) in applied.items():
        highwater = highwaters.get(partition)
        waiting = 0 if highwater is None else highwater - (offset + 1)
        idle = now - moved_at
        if waiting > 0 and idle > stall_s:
            found[partition] = f"{waiting} records waiting, no progress for {idle:.0f} s"
    return found
