"""When the retrainer retrains by itself: on a schedule, and when enough new outcomes arrived.

Pure decisions over numbers the retrainer hands in (the time, how many outcomes the topic
holds) and marks it keeps in its state (Redis), so a restarted or new leader carries on where
the last one stopped: a schedule does not fire twice for one due time, nor skip a due time it
was down for (it fires once, late -- as anacron does); a volume count is not restarted.

Cron expressions are evaluated in UTC by ``cronsim`` (the parser healthchecks.io runs on);
the Vixie-cron shorthands (``@daily`` ...) are mapped here because cronsim does not read them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cronsim import CronSim, CronSimError

#: Shorthands of Vixie cron, as five-field expressions.
SHORTHANDS: Final = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@nightly": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT_S: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

#: Names of the marks kept in the retrainer's state.
SCHEDULE_NEXT: Final = "schedule_next_s"
OUTCOMES_SEEN: Final = "outcomes_seen"
#: The ``requested_by`` of the retrains each trigger asks for.
SCHEDULE: Final = "schedule"
VOLUME: Final = "volume"
TRIGGERS: Final = (SCHEDULE, VOLUME)


class ScheduleError(ValueError):
    """A schedule that is neither a cron expression nor an interval."""


@dataclass(frozen=True)
class Schedule:
    """A cron expression (UTC) or a fixed interval, as ``retrain.schedule`` gives it."""

    text: str
    cron: str | None
    interval_s: float | None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """``30s``, ``15m``, ``6h``, ``1d``; ``0 2 * * *``; ``@daily``, ``@weekly``, ...

        >>> Schedule.parse("6h").interval_s, Schedule.parse("@weekly").cron
        (21600.0, '0 0 * * 0')
        """
        given = text.strip()
        interval = _INTERVAL.match(given.lower())
        if interval:
            seconds = float(interval.group(1)) * _UNIT_S[interval.group(2)]
            if seconds <= 0:
                raise ScheduleError(f"schedule interval must be positive, not {text!r}")
            return cls(given, None, seconds)
        cron = SHORTHANDS.get(given.lower(), given)
        try:
            CronSim(cron, datetime.now(UTC))
        except (CronSimError, ValueError) as exc:
            raise ScheduleError(
                f"schedule {text!r} is neither an interval (30s, 15m, 6h, 1d) nor a cron "
                f"expression (0 2 * * *, @daily): {exc}"
            ) from None
        return cls(given, cron, None)

    def next_after(self, t: float) -> float:
        """The first due time after ``t`` (epoch seconds).

        >>> Schedule.parse("@daily").next_after(1795000000.0) - 1795000000.0 < 86400
        True
        """
        if self.interval_s is not None:
            return t + self.interval_s
        assert self.cron is not None
        start = datetime.fromtimestamp(t, UTC)
        return next(iter(CronSim(self.cron, start))).timestamp()


@dataclass(frozen=True)
class Trigger:
    """A retrain one of the triggers asks for: who asks (``requested_by``) and why."""

    requested_by: str
    reason: str


@dataclass(frozen=True)
class TriggerConfig:
    """The configured triggers (either may be off)."""

    schedule: Schedule | None = None
    every_outcomes: int | None = None


def due_triggers(
    config: TriggerConfig, now: float, outcomes: int | None, marks: Mapping[str, float]
) -> tuple[list[Trigger], dict[str, float]]:
    """The triggers due at ``now`` and the marks to store once they are enqueued.

    ``outcomes``: how many outcomes the topic holds now (None: not known this time, the
    volume trigger waits). A mark not stored yet is set without firing: a new schedule first
    fires at its next due time, and the volume is counted from when the retrainer first
    looked, not from the topic's beginning.
    """
    fired: list[Trigger] = []
    updated: dict[str, float] = {}
    schedule = config.schedule
    if schedule is not None:
        due = marks.get(SCHEDULE_NEXT)
        if due is None:
            updated[SCHEDULE_NEXT] = schedule.next_after(now)
        elif now >= due:
            when = datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            fired.append(Trigger(SCHEDULE, f"scheduled retrain ({schedule.text}), due {when}"))
            updated[SCHEDULE_NEXT] = schedule.next_after(now)
    every = config.every_outcomes
    if every is not None and outcomes is not None:
        seen = marks.get(OUTCOMES_SEEN)
        if seen is None or outcomes < seen:  # first look, or the topic was recreated
            updated[OUTCOMES_SEEN] = outcomes
        elif outcomes - seen >= every:
            fired.append(
                Trigger(
                    VOLUME,
                    f"{outcomes - int(seen):,} new outcomes since the last retrain (every "
                    f"{every:,})",
                )
            )
            updated[OUTCOMES_SEEN] = outcomes
    return fired, updated
