"""Data and prediction drift: PSI of recent values against a model's reference distribution.

The reference is the deciles a batch model's metadata holds (features of its training rows, or
its own predictions on validation rows). Recent values are counted in the reference's bins with
exponential fading (half-life ``psi_half_life`` outcomes). Every ``check_every`` outcomes the
PSI is computed; PSI >= ``psi_alert`` is drift; a borderline PSI (>= ``psi_borderline``) is
settled by a Kolmogorov-Smirnov test (scipy) of the last ``ks_samples`` values against the
reference CDF. One alert per shift (all drifted columns listed); recovery when every column is
back below the borderline.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from models.decay import fading_factor
from models.drift.alerts import AlertEvent, Episode, episode_id
from models.drift.config import DriftConfig
from models.drift.ring import Ring

EPSILON = 1e-4


class ReferenceBins:
    """Bins of a reference distribution, the reference share of each, and its CDF.

    Built from a reference entry of a model's metadata (see ``models.training``): exact bin
    shares when present; from deciles alone (each decile 10%) for older metadata.
    """

    def __init__(self, reference: Mapping[str, Any]) -> None:
        q = np.asarray(reference["quantiles"], dtype=np.float64)
        if q.ndim != 1 or len(q) < 3 or not np.all(np.diff(q) >= 0):
            raise ValueError("reference quantiles must be a non-decreasing list of 3+ values")
        self.reference = dict(reference)
        self.quantiles = q
        self.discrete = bool(reference.get("discrete", False))
        bins = reference.get("bins")
        if bins:
            self.edges = [float(e) for e in bins["edges"]]
            self.expected = np.asarray(bins["shares"], dtype=np.float64)
            if len(self.expected) != len(self.edges) + 1:
                raise ValueError("reference bins need one more share than edges")
            return
        self.edges = sorted(set(q[1:-1].tolist()))
        share = 1.0 / (len(q) - 1)
        expected = np.zeros(len(self.edges) + 1)
        for upper in q[1:]:
            expected[bisect.bisect_left(self.edges, upper)] += share
        self.expected = expected

    def bin_of(self, value: float) -> int:
        """Index of the bin holding ``value``."""
        return bisect.bisect_left(self.edges, value)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Reference CDF, piecewise linear through the quantiles."""
        return np.interp(x, self.quantiles, np.linspace(0.0, 1.0, len(self.quantiles)))


def psi(counts: np.ndarray, expected: np.ndarray) -> float:
    """Population stability index of observed bin counts against expected shares.

    >>> round(psi(np.array([10.0, 10.0]), np.array([0.5, 0.5])), 6)
    0.0
    """
    total = counts.sum()
    if total <= 0:
        return 0.0
    actual = np.clip(counts / total, EPSILON, None)
    reference = np.clip(expected, EPSILON, None)
    return float(np.sum((actual - reference) * np.log(actual / reference)))


class DistributionMonitor:
    """PSI (+ KS when borderline) of some columns against a reference; one episode for all.

    The reference bins are the batch model's (shared by every key, never copied into a key's
    checkpoint: a restored monitor knows only the reference's version and is re-attached to the
    bins when the learner next passes that model's reference). Bin counts are Python floats and
    the recent values sit in compact rings: measured on the learner processor, numpy element
    writes here cost ~2 us of every outcome.
    """

    def __init__(self, kind: str, config: DriftConfig) -> None:
        self.kind = kind
        self.config = config
        self.reference_version: str | None = None
        self.bins: dict[str, ReferenceBins] = {}
        self.counts: dict[str, list[float]] = {}
        self.samples: dict[str, Ring] = {}
        self.seen = 0
        self.episode = Episode()
        self._block_decay = fading_factor(config.psi_half_life) ** config.check_every
        self._columns: list[tuple[str, list[float], list[float], Ring]] = []

    def set_reference(self, version: str, bins: Mapping[str, ReferenceBins]) -> None:
        """Compare against a new model's reference from now on (counts start over)."""
        self.reference_version = version
        self.counts = {name: [0.0] * len(b.expected) for name, b in bins.items()}
        self.samples = {name: Ring(self.config.ks_samples, np.float32) for name in bins}
        self.seen = 0
        self._bind(bins)

    def attach(self, version: str, bins: Mapping[str, ReferenceBins]) -> None:
        """Give a restored monitor its reference's bins back (same version: counts are kept).

        Counts that do not fit the bins (a different reference under the same name) start over.
        """
        if (
            version != self.reference_version
            or set(bins) != set(self.counts)
            or any(len(self.counts[name]) != len(b.expected) for name, b in bins.items())
        ):
            self.set_reference(version, bins)
            return
        for name in bins:
            self.samples.setdefault(name, Ring(self.config.ks_samples, np.float32))
        self._bind(bins)

    def restore(
        self,
        version: str | None,
        counts: Mapping[str, list[float]],
        samples: Mapping[str, Ring],
        seen: int,
        episode: Episode,
    ) -> None:
        """Saved state without the bins (see :meth:`attach`)."""
        self.reference_version = version
        self.bins, self._columns = {}, []
        self.counts = {name: list(values) for name, values in counts.items()}
        self.samples = dict(samples)
        self.seen = seen
        self.episode = episode

    def _bind(self, bins: Mapping[str, ReferenceBins]) -> None:
        self.bins = dict(bins)
        self._columns = [
            (name, b.edges, self.counts[name], self.samples[name]) for name, b in self.bins.items()
        ]

    def add(self, values: Mapping[str, float], n: int | None = None) -> None:
        """Count one outcome's values; ``n`` is the key's outcome number (checks run when
        ``n % check_every == 0``).

        Given ``n``, a value is kept for the KS test only if it is one of the last
        ``ks_samples`` before the next check: the only ones a check ever reads, so the test
        sees exactly the same values (the drift monitor skips ~60% of the sample writes).
        """
        if not self._columns:
            return
        config = self.config
        if n is not None and (-n) % config.check_every >= config.ks_samples:
            for name, edges, counts, _ in self._columns:
                value = values.get(name)
                if value is not None:
                    counts[bisect.bisect_left(edges, value)] += 1.0
        else:
            for name, edges, counts, samples in self._columns:
                value = values.get(name)
                if value is not None:
                    counts[bisect.bisect_left(edges, value)] += 1.0
                    samples.append(value)
        self.seen += 1

    def add_one(self, name: str, value: float) -> None:
        """Count one outcome's value of a one-column monitor (the prediction monitor's path:
        :meth:`add` without building a dict per outcome)."""
        for column, edges, counts, samples in self._columns:
            if column == name:
                counts[bisect.bisect_left(edges, value)] += 1.0
                samples.append(value)
        if self._columns:
            self.seen += 1

    def statistics(self) -> dict[str, float]:
        """Current PSI of every column."""
        return {
            name: psi(np.asarray(self.counts[name]), bins.expected)
            for name, bins in self.bins.items()
        }

    def check(self, key: str, n: int) -> list[AlertEvent]:
        """Judge drift now (called every ``check_every`` outcomes), then fade the counts."""
        if not self.bins:  # no reference, or restored and not attached yet: nothing counted
            return []
        if self.seen < self.config.warmup:
            self._fade()
            return []
        config = self.config
        values = self.statistics()
        drifted: dict[str, dict[str, float]] = {}
        for name, value in values.items():
            if value >= config.psi_alert:
                drifted[name] = {"psi": value}
            elif (
                value >= config.psi_borderline
                and not self.bins[name].discrete  # KS assumes a continuous distribution
                and len(self.samples[name]) >= 30
            ):
                p_value = float(
                    stats.kstest(self.samples[name].values(), self.bins[name].cdf).pvalue
                )
                if p_value < config.ks_alpha:
                    drifted[name] = {"psi": value, "ks_p_value": p_value}
        events: list[AlertEvent] = []
        worst = max(values.values()) if values else 0.0
        if drifted and self.episode.can_open(n):
            self.episode.start(n, {"columns": sorted(drifted)})
            if self.kind in config.retrain_on:
                self.episode.retrain_due_at = n + config.retrain_delay_outcomes
            events.append(self._event("alert", key, n, worst, drifted, values))
        elif self.episode.open and worst < config.psi_borderline:
            events.append(self._event("recovery", key, n, worst, {}, values))
            self.episode.close(n, config.cooldown_outcomes)
        self._fade()
        return events

    def _fade(self) -> None:
        decay = self._block_decay
        for counts in self.counts.values():
            counts[:] = [c * decay for c in counts]

    def _event(
        self,
        event: str,
        key: str,
        n: int,
        worst: float,
        drifted: Mapping[str, Any],
        values: Mapping[str, float],
    ) -> AlertEvent:
        config = self.config
        if event == "alert":
            severity = "critical" if worst >= 2 * config.psi_alert else "warning"
            action = "retrain_scheduled" if self.episode.retrain_due_at is not None else "none"
            threshold = config.psi_alert
        else:
            severity, action, threshold = "info", "none", config.psi_borderline
        return AlertEvent(
            event=event,
            kind=self.kind,
            source=None,
            detector=f"PSI over reference deciles (KS alpha {config.ks_alpha} when borderline)",
            statistic=worst,
            threshold=threshold,
            window=config.psi_half_life,
            severity=severity,
            action=action,
            at_outcome=n,
            episode=episode_id(key, self.kind, None, self.episode.started_at),
            details={
                "drifted": dict(drifted),
                "psi": {name: round(value, 5) for name, value in values.items()},
                "reference_version": self.reference_version,
            },
        )
