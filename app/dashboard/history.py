"""The dashboard's memory: bounded time series built from cumulative snapshots.

The learner's state holds, per key, cumulative prequential sums (outcomes scored, correct
predictions, log-loss sum) per source. Two snapshots a few seconds apart give the accuracy and
log loss of the outcomes in between (a window) -- what ops want to see move when the market
flips -- with nothing added to the workers. :class:`History` keeps the last ``points``
windows of every key and of all keys together ("all"), plus lag, signal latency and
throughput; series of keys that leave the ``top_keys`` busiest are dropped, so memory is
bounded by ``points * (top_keys + 1)`` rows whatever the number of keys.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.metrics import SOURCES

#: The series name of every key's outcomes together.
ALL = "all"


@dataclass
class Totals:
    """Cumulative prequential sums per source (n, correct predictions, log-loss sum) and the
    outcomes learned, of one key or summed over keys; ``minus`` turns two into a window."""

    updates: int = 0
    n: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0.0))
    correct: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0.0))
    loss: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0.0))

    @classmethod
    def of_summary(cls, summary: Mapping[str, Any]) -> Totals:
        """From one key's state summary (:func:`models.codec.summary_of`)."""
        totals = cls(updates=int(summary["updates"]))
        for source in SOURCES:
            metrics = summary["metrics"][source]
            if metrics["n"]:
                totals.n[source] = metrics["n"]
                totals.correct[source] = metrics["accuracy"] * metrics["n"]
                totals.loss[source] = metrics["log_loss"] * metrics["n"]
        return totals

    @classmethod
    def summed(cls, parts: Iterable[Totals]) -> Totals:
        """The sums over several keys."""
        total = cls()
        for part in parts:
            total.updates += part.updates
            for source in SOURCES:
                total.n[source] += part.n[source]
                total.correct[source] += part.correct[source]
                total.loss[source] += part.loss[source]
        return total

    def minus(self, earlier: Totals) -> Totals:
        """The sums of the outcomes between ``earlier`` and this snapshot."""
        return Totals(
            updates=self.updates - earlier.updates,
            n={s: self.n[s] - earlier.n[s] for s in SOURCES},
            correct={s: self.correct[s] - earlier.correct[s] for s in SOURCES},
            loss={s: self.loss[s] - earlier.loss[s] for s in SOURCES},
        )

    def accuracy(self, source: str) -> float | None:
        """Share of correct predictions of a source (None: nothing scored)."""
        return self.correct[source] / self.n[source] if self.n[source] > 0 else None

    def log_loss(self, source: str) -> float | None:
        """Mean log loss of a source (None: nothing scored)."""
        return self.loss[source] / self.n[source] if self.n[source] > 0 else None


@dataclass(frozen=True)
class Sample:
    """What the sampler read at one moment (``at``: epoch seconds).

    ``keys``: every key's cumulative totals; ``lag``: records behind per topic ("outcomes",
    "requests"; None when unknown); ``latencies_ms``: request -> signal latencies of signals
    published since the previous sample (or a bounded sample of them); ``signals``: how many
    signals were published since the previous sample.
    """

    at: float
    keys: Mapping[str, Totals]
    lag: Mapping[str, int | None] = field(default_factory=dict)
    latencies_ms: Sequence[float] = ()
    signals: int = 0


class KeySeries:
    """One key's windows: time, outcomes per second, accuracy and log loss per source."""

    def __init__(self, points: int) -> None:
        self.t: deque[float] = deque(maxlen=points)
        self.outcomes_per_s: deque[float | None] = deque(maxlen=points)
        self.accuracy = {s: deque[float | None](maxlen=points) for s in SOURCES}
        self.log_loss = {s: deque[float | None](maxlen=points) for s in SOURCES}

    def add(self, at: float, window: Totals, seconds: float) -> None:
        """One window's numbers (None where the window scored nothing)."""
        self.t.append(at)
        self.outcomes_per_s.append(window.updates / seconds if seconds > 0 else None)
        for source in SOURCES:
            self.accuracy[source].append(_rounded(window.accuracy(source)))
            self.log_loss[source].append(_rounded(window.log_loss(source)))

    def as_json(self) -> dict[str, Any]:
        """Plain lists (uPlot's column layout)."""
        return {
            "t": list(self.t),
            "outcomes_per_s": list(self.outcomes_per_s),
            "accuracy": {s: list(v) for s, v in self.accuracy.items()},
            "log_loss": {s: list(v) for s, v in self.log_loss.items()},
        }


class History:
    """The last ``points`` windows of every top key and of all keys, and the deployment's lag,
    latency and throughput over the same samples (see the module doc)."""

    def __init__(self, points: int, top_keys: int) -> None:
        self.points = points
        self.top_keys = top_keys
        self._previous: Sample | None = None
        self._series: dict[str, KeySeries] = {}
        self._baselines: dict[str, tuple[float, Totals]] = {}
        self.latest: Sample | None = None
        self.t: deque[float] = deque(maxlen=points)
        self.lag = {topic: deque[int | None](maxlen=points) for topic in ("outcomes", "requests")}
        self.latency = {q: deque[float | None](maxlen=points) for q in ("p50", "p95", "max")}
        self.signals_per_s: deque[float | None] = deque(maxlen=points)
        self.outcomes_per_s: deque[float | None] = deque(maxlen=points)

    def add(self, sample: Sample) -> None:
        """Record a sample: a window for each tracked key that learned something since its
        last window, and the deployment's lag, latency quantiles and rates. The first sample
        only sets the baselines."""
        previous, self._previous, self.latest = self._previous, sample, sample
        now = Totals.summed(sample.keys.values())
        tracked = self._tracked(sample.keys)
        for key in [k for k in self._baselines if k != ALL and k not in tracked]:
            del self._baselines[key]
            self._series.pop(key, None)
        self._window(ALL, sample.at, now)
        for key in tracked:
            self._window(key, sample.at, sample.keys[key])
        if previous is None or sample.at <= previous.at:
            return
        seconds = sample.at - previous.at
        before = Totals.summed(previous.keys.values())
        self.t.append(sample.at)
        for topic, values in self.lag.items():
            values.append(sample.lag.get(topic))
        for name, value in quantiles(sample.latencies_ms).items():
            self.latency[name].append(value)
        self.signals_per_s.append(round(sample.signals / seconds, 1))
        self.outcomes_per_s.append(round(max(0, now.updates - before.updates) / seconds, 1))

    def _tracked(self, keys: Mapping[str, Totals]) -> list[str]:
        return heapq.nlargest(self.top_keys, keys, key=lambda k: (keys[k].updates, k))

    def _window(self, key: str, at: float, now: Totals) -> None:
        """A point for the outcomes ``key`` learned since its last point. A sample that finds
        nothing new (the workers checkpoint every second or so) adds none: the next window
        covers both, instead of a gap in the line."""
        baseline = self._baselines.get(key)
        self._baselines.setdefault(key, (at, now))
        if baseline is None:
            return
        since, before = baseline
        window = now.minus(before)
        if window.updates < 0 or any(window.n[s] < 0 for s in SOURCES):
            self._baselines[key] = (at, now)  # the key's state was reset (rebuilt): restart
            return
        if (window.updates == 0 and not any(window.n.values())) or at <= since:
            return
        self._series.setdefault(key, KeySeries(self.points)).add(at, window, at - since)
        self._baselines[key] = (at, now)

    def keys(self) -> list[str]:
        """``all`` and the tracked keys, busiest first."""
        latest = self.latest.keys if self.latest else {}
        tracked = [k for k in self._baselines if k != ALL]
        return [ALL, *sorted(tracked, key=lambda k: (-latest[k].updates if k in latest else 0, k))]

    def series(self, key: str) -> dict[str, Any] | None:
        """One key's (or ``all``'s) windows as plain lists; None for a key not tracked."""
        if key not in self._baselines:
            return None
        found = self._series.get(key)
        return KeySeries(0).as_json() if found is None else found.as_json()

    def deployment(self) -> dict[str, Any]:
        """Lag, latency and throughput series of the whole deployment."""
        return {
            "t": list(self.t),
            "lag": {topic: list(values) for topic, values in self.lag.items()},
            "latency_ms": {name: list(values) for name, values in self.latency.items()},
            "signals_per_s": list(self.signals_per_s),
            "outcomes_per_s": list(self.outcomes_per_s),
        }

    def totals(self) -> dict[str, Any]:
        """Cumulative numbers of the latest sample over all keys (the page's tiles)."""
        if self.latest is None:
            return {"keys": 0, "outcomes": 0, "accuracy": {}, "log_loss": {}}
        total = Totals.summed(self.latest.keys.values())
        return {
            "keys": len(self.latest.keys),
            "outcomes": total.updates,
            "accuracy": {s: _rounded(total.accuracy(s)) for s in SOURCES},
            "log_loss": {s: _rounded(total.log_loss(s)) for s in SOURCES},
        }


def quantiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p95 and max of some latencies (None each when there are none).

    >>> quantiles([1.0, 2.0, 3.0, 4.0, 100.0])
    {'p50': 3.0, 'p95': 100.0, 'max': 100.0}
    >>> quantiles([])
    {'p50': None, 'p95': None, 'max': None}
    """
    if not values:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {
        "p50": ordered[_rank(0.50, len(ordered))],
        "p95": ordered[_rank(0.95, len(ordered))],
        "max": ordered[-1],
    }


def _rank(quantile: float, count: int) -> int:
    """The nearest-rank index of a quantile."""
    return max(0, math.ceil(quantile * count) - 1)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 5)
