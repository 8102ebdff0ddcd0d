"""Retrain triggers: a schedule fires once per due time (also after a restart), a volume
trigger once per N new outcomes, neither on its first look."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.triggers import (
    OUTCOMES_SEEN,
    SCHEDULE_NEXT,
    Schedule,
    ScheduleError,
    TriggerConfig,
    due_triggers,
)

T0 = datetime(2026, 11, 24, 10, 3, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "after_t0"),
    [
        ("90s", T0 + 90),
        ("15m", T0 + 900),
        ("1.5h", T0 + 5400),
        ("1d", T0 + 86400),
        ("0 2 * * *", datetime(2026, 11, 25, 2, 0, tzinfo=UTC).timestamp()),
        ("@daily", datetime(2026, 11, 25, 0, 0, tzinfo=UTC).timestamp()),
        ("@weekly", datetime(2026, 11, 29, 0, 0, tzinfo=UTC).timestamp()),  # a Sunday
        ("@monthly", datetime(2026, 12, 1, 0, 0, tzinfo=UTC).timestamp()),
        ("*/5 * * * *", datetime(2026, 11, 24, 10, 5, tzinfo=UTC).timestamp()),
    ],
)
def test_schedules_name_their_next_due_time(text, after_t0):
    assert Schedule.parse(text).next_after(T0) == after_t0


@pytest.mark.parametrize("text", ["", "0s", "daily", "61 * * * *", "* * *", "5 fortnights"])
def test_bad_schedules_are_refused_with_the_forms_that_work(text):
    with pytest.raises(ScheduleError, match=r"interval|positive"):
        Schedule.parse(text)


def test_a_schedule_fires_once_per_due_time_and_catches_up_once_after_downtime():
    config = TriggerConfig(schedule=Schedule.parse("1h"))
    fired, marks = due_triggers(config, T0, None, {})
    assert fired == [] and marks == {SCHEDULE_NEXT: T0 + 3600}  # first look: no fire
    assert due_triggers(config, T0 + 3599, None, marks) == ([], {})
    fired, marks = due_triggers(config, T0 + 3600, None, marks)
    assert [t.requested_by for t in fired] == ["schedule"] and "1h" in fired[0].reason
    assert marks == {SCHEDULE_NEXT: T0 + 7200}
    # Down for three due times: one retrain when it is back, then the regular pace.
    fired, marks = due_triggers(config, T0 + 5 * 3600 + 10, None, marks)
    assert len(fired) == 1 and marks == {SCHEDULE_NEXT: T0 + 6 * 3600 + 10}


def test_a_volume_trigger_counts_from_its_first_look():
    config = TriggerConfig(every_outcomes=1000)
    fired, marks = due_triggers(config, T0, 50_000, {})
    assert fired == [] and marks == {OUTCOMES_SEEN: 50_000}  # the backlog is not "new"
    assert due_triggers(config, T0, 50_999, marks) == ([], {})
    assert due_triggers(config, T0, None, marks) == ([], {})  # count unknown: wait
    fired, marks = due_triggers(config, T0, 51_000, marks)
    assert [t.requested_by for t in fired] == ["volume"] and "1,000 new outcomes" in fired[0].reason
    assert marks == {OUTCOMES_SEEN: 51_000}
    fired, marks = due_triggers(config, T0, 10, marks)  # the topic was recreated
    assert fired == [] and marks == {OUTCOMES_SEEN: 10}


def test_both_triggers_fire_independently():
    config = TriggerConfig(schedule=Schedule.parse("10s"), every_outcomes=5)
    marks = {SCHEDULE_NEXT: T0, OUTCOMES_SEEN: 0.0}
    fired, updated = due_triggers(config, T0, 5, marks)
    assert [t.requested_by for t in fired] == ["schedule", "volume"]
    assert updated == {SCHEDULE_NEXT: T0 + 10, OUTCOMES_SEEN: 5}
