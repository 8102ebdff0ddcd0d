"""The dashboard's pure parts: windows from cumulative snapshots, bounded memory, the
timeline's dedupe and open episodes, and the JSON view served from them."""

from __future__ import annotations

import orjson
import pytest

from app.dashboard.history import ALL, History, Sample, Totals
from app.dashboard.sampler import Event
from app.dashboard.service import Dashboard
from app.dashboard.timeline import Timeline
from config import Settings
from models.notifications import Notice, NoticeError, notice_of


def _totals(updates: int, n: float, correct: float, loss: float) -> Totals:
    return Totals(
        updates=updates,
        n=dict.fromkeys(("online", "batch", "blend"), n),
        correct={"online": correct, "batch": correct / 2, "blend": correct},
        loss=dict.fromkeys(("online", "batch", "blend"), loss),
    )


def test_windows_are_the_differences_between_snapshots():
    history = History(points=10, top_keys=5)
    history.add(Sample(100.0, {"a": _totals(100, 100, 70, 50)}, {"outcomes": 3}))
    assert history.series("a")["t"] == []  # the first sample is only a baseline
    assert history.series("b") is None  # not a key it knows
    history.add(Sample(102.0, {"a": _totals(300, 300, 170, 150)}, {"outcomes": 0}, [5.0], 40))
    series = history.series("a")
    assert series["t"] == [102.0]
    assert series["accuracy"]["online"] == [0.5]  # (170 - 70) / (300 - 100)
    assert series["accuracy"]["batch"] == [0.25]
    assert series["log_loss"]["blend"] == [0.5]
    assert series["outcomes_per_s"] == [100.0]
    deployment = history.deployment()
    assert deployment["lag"]["outcomes"] == [0] and deployment["lag"]["requests"] == [None]
    assert deployment["latency_ms"]["p95"] == [5.0]
    assert deployment["signals_per_s"] == [20.0]
    assert history.totals()["outcomes"] == 300


def test_all_sums_every_key_and_a_sample_with_nothing_new_widens_the_next_window():
    history = History(points=10, top_keys=5)
    history.add(Sample(0.0, {"a": _totals(10, 10, 5, 5), "b": _totals(10, 10, 5, 5)}))
    history.add(Sample(1.0, {"a": _totals(20, 20, 15, 10), "b": _totals(10, 10, 5, 5)}))
    assert history.series(ALL)["accuracy"]["online"] == [1.0]  # (20 - 10) / (30 - 20)
    assert history.series("b")["t"] == []  # b learned nothing (not yet checkpointed): no point
    history.add(Sample(2.0, {"a": _totals(20, 20, 15, 10), "b": _totals(30, 30, 15, 5)}))
    b = history.series("b")
    assert b["t"] == [2.0] and b["accuracy"]["online"] == [0.5]  # (15 - 5) / (30 - 10)
    assert b["outcomes_per_s"] == [10.0]  # 20 outcomes over the 2 s since its baseline


def test_memory_is_bounded_in_points_and_keys():
    history = History(points=3, top_keys=2)
    for step in range(10):
        keys = {k: _totals(step * (i + 1), step, step / 2, step) for i, k in enumerate("abcd")}
        history.add(Sample(float(step), keys))
    assert len(history.series(ALL)["t"]) == 3
    assert history.keys() == [ALL, "d", "c"]  # the two busiest, busiest first
    assert history.series("a") is None


def test_a_reset_key_gives_no_window_instead_of_a_negative_one():
    history = History(points=5, top_keys=5)
    history.add(Sample(0.0, {"a": _totals(100, 100, 60, 50)}))
    history.add(Sample(1.0, {"a": _totals(10, 10, 6, 5)}))
    assert history.series("a")["t"] == []  # the reset is a new baseline
    history.add(Sample(2.0, {"a": _totals(20, 20, 11, 5)}))
    assert history.series("a")["accuracy"]["online"] == [0.5]


def _alert(message: dict) -> Notice:
    return notice_of(orjson.dumps(message), True, "unused")


def _update(message: dict, fallback_id: str = "unused") -> Notice:
    return notice_of(orjson.dumps(message), False, fallback_id)


def test_timeline_shows_a_message_once_and_tracks_open_episodes():
    timeline = Timeline(limit=10)
    alert = {
        "alert_id": "e1-alert",
        "event": "alert",
        "key": "global",
        "kind": "concept",
        "source": "batch",
        "severity": "warning",
        "statistic": 0.4,
        "threshold": 0.3,
        "episode": "e1",
    }
    timeline.add(_alert(alert), 1000)
    timeline.add(_alert(alert), 1001)  # published twice by the outbox
    assert timeline.open_episodes() == {"concept": 1}
    timeline.add(_update({"event": "activated", "version": "v2", "update_id": "u1"}), 2000)
    timeline.add(_alert({**alert, "alert_id": "e1-recovery", "event": "recovery"}), 3000)
    events = timeline.events()
    assert [e["event"] for e in events] == ["recovery", "activated", "alert"]
    assert events[1]["version"] == "v2" and "v2" in events[1]["title"]
    assert events[0]["key"] == "global" and events[0]["source"] == "batch"
    assert timeline.open_episodes() == {}
    for unreadable in (b'{"no": "id"}', b"not json", b"[1]", None):  # the sampler skips them
        with pytest.raises(NoticeError):
            notice_of(unreadable, True, "x")


def test_timeline_keeps_the_newest_limit_events():
    timeline = Timeline(limit=2)
    for i in range(5):
        timeline.add(_update({"event": "rejected", "version": f"v{i}"}, f"0-{i}"), i)
    assert [e["version"] for e in timeline.events()] == ["v4", "v3"]


class Twin:
    """The sampler's in-memory twin: hands out prepared samples, or fails on demand."""

    def __init__(self, samples):
        self.samples = list(samples)
        self.registry_view = {"active": "v1", "staged": None, "versions": []}
        self.events = []
        self.closed = 0

    def sample(self):
        found = self.samples.pop(0)
        if isinstance(found, Exception):
            raise found
        return found

    def new_events(self):
        events, self.events = self.events, []
        return events

    def close(self):
        self.closed += 1


@pytest.mark.parametrize("key", ["all", "nope"])
def test_the_view_falls_back_to_all_for_an_unknown_key(key):
    twin = Twin([Sample(0.0, {"a": _totals(1, 1, 1, 1)}), Sample(1.0, {"a": _totals(2, 2, 2, 2)})])
    dashboard = Dashboard(Settings(), twin)
    dashboard.sample_once()
    dashboard.sample_once()
    view = dashboard.view(key)
    assert view["key"] == "all" and view["keys"] == ["all", "a"]
    assert view["series"]["t"] == [1.0]
    assert view["registry"]["active"] == "v1" and view["error"] is None
    assert view["sample_seconds"] >= 0


def test_a_failed_read_is_shown_and_the_history_kept():
    twin = Twin(
        [
            Sample(0.0, {"a": _totals(1, 1, 1, 1)}),
            Sample(1.0, {"a": _totals(2, 2, 2, 2)}),
            ConnectionError("redis unreachable\nmore"),
            Sample(3.0, {"a": _totals(3, 3, 3, 3)}),
        ]
    )
    twin.events = [Event(_update({"event": "activated", "version": "v1"}), 5)]
    dashboard = Dashboard(Settings(), twin)
    dashboard.sample_once()
    dashboard.sample_once()
    dashboard.sample_once()
    view = dashboard.view("a")
    assert view["error"] == "ConnectionError: redis unreachable" and twin.closed == 1
    assert view["series"]["t"] == [1.0] and [e["event"] for e in view["events"]] == ["activated"]
    dashboard.sample_once()
    view = dashboard.view("a")
    assert view["error"] is None and view["series"]["t"] == [1.0, 3.0]
