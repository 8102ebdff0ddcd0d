"""A seedable synthetic market: trade outcomes and signal requests with known regime changes.

Every trade has eight indicator features. Whether it wins is drawn from a logistic model of the
standardised features whose coefficients depend on the market *regime*: in the momentum regime
recent returns predict wins, in the mean-reversion regime they predict losses. The regime
switches at known outcome indices (``change_points``), so a batch model trained in one regime
goes stale in the next and online learning has something to do. Used by the demo, the tests and
the benchmarks; no Kafka here, only plain messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.training import outcomes_frame

#: 2026-01-01T00:00:00Z in epoch milliseconds: where simulated time starts.
EPOCH_2026_MS = 1_767_225_600_000


@dataclass(frozen=True)
class FeatureSpec:
    """How one feature's raw value is made from a standard-normal draw ``z``."""

    name: str
    kind: str  # "normal" | "lognormal" | "sine"
    loc: float
    scale: float

    def raw(self, z: np.ndarray, phase: np.ndarray) -> np.ndarray:
        """Raw feature values for standard-normal draws ``z``."""
        if self.kind == "normal":
            return self.loc + self.scale * z
        if self.kind == "lognormal":
            return np.exp(np.log(self.loc) + self.scale * z)
        if self.kind == "sine":
            return np.sin(phase)
        raise ValueError(f"unknown feature kind {self.kind}")


FEATURE_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("ret_1", "normal", 0.0, 0.004),
    FeatureSpec("ret_5", "normal", 0.0, 0.009),
    FeatureSpec("ret_20", "normal", 0.0, 0.02),
    FeatureSpec("rsi_14", "normal", 50.0, 12.0),
    FeatureSpec("vol_20", "lognormal", 0.015, 0.3),
    FeatureSpec("volume_z", "normal", 0.0, 1.0),
    FeatureSpec("spread_bps", "lognormal", 2.0, 0.4),
    FeatureSpec("hour_sin", "sine", 0.0, 1.0),
)
FEATURES: tuple[str, ...] = tuple(spec.name for spec in FEATURE_SPECS)


@dataclass(frozen=True)
class Regime:
    """Coefficients of the win model on standardised features, and feature shifts (in sd)."""

    name: str
    coefficients: Mapping[str, float]
    intercept: float = 0.0
    shifts: Mapping[str, float] = field(default_factory=dict)


MOMENTUM = Regime(
    "momentum",
    {
        "ret_1": 0.5,
        "ret_5": 0.8,
        "ret_20": 0.6,
        "rsi_14": 0.3,
        "vol_20": -0.2,
        "volume_z": 0.3,
        "spread_bps": -0.3,
        "hour_sin": 0.1,
    },
)
MEAN_REVERSION = Regime(
    "mean_reversion",
    {
        "ret_1": -0.5,
        "ret_5": -0.8,
        "ret_20": -0.6,
        "rsi_14": -0.3,
        "vol_20": -0.2,
        "volume_z": -0.3,
        "spread_bps": -0.3,
        "hour_sin": 0.1,
    },
    shifts={"vol_20": 1.0},
)


class MarketSimulator:
    """Deterministic stream of trade outcomes and signal requests for a given ``seed``.

    The outcome and request streams use separate random generators, so how many requests are
    drawn never changes the outcomes. Outcome ``i`` is in regime
    ``regimes[(number of change points <= i) % len(regimes)]``.

    >>> sim = MarketSimulator(seed=7, change_points=[2])
    >>> [sim.regime_at(i).name for i in range(4)]
    ['momentum', 'momentum', 'mean_reversion', 'mean_reversion']
    >>> first = sim.outcomes(1)[0]
    >>> sorted(first) == ['features', 'key', 'label', 'outcome_id', 'realized_rr', 'ts']
    True
    """

    def __init__(
        self,
        seed: int = 0,
        change_points: Sequence[int] = (),
        regimes: Sequence[Regime] = (MOMENTUM, MEAN_REVERSION),
        keys: Sequence[str] = ("global",),
        start_ts_ms: int = EPOCH_2026_MS,
        ms_per_event: int = 1_000,
    ) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self.seed = seed
        self.change_points = tuple(sorted(change_points))
        self.regimes = tuple(regimes)
        self.keys = tuple(keys)
        self.start_ts_ms = start_ts_ms
        self.ms_per_event = ms_per_event
        self._outcome_rng = np.random.default_rng([seed, 1])
        self._request_rng = np.random.default_rng([seed, 2])
        key_rng = np.random.default_rng([seed, 3])
        self._key_bias = key_rng.normal(0.0, 0.2, size=len(self.keys))
        self.outcomes_made = 0
        self.requests_made = 0

    def regime_at(self, index: int) -> Regime:
        """The regime that governs outcome number ``index``."""
        return self.regimes[int(self._regime_ids(np.array([index]))[0])]

    def outcomes(self, n: int) -> list[dict[str, Any]]:
        """The next ``n`` trade outcomes, as ``trade-outcomes`` messages."""
        start = self.outcomes_made
        index = np.arange(start, start + n)
        rng = self._outcome_rng
        key_index = rng.integers(len(self.keys), size=n)
        z, raw = self._draw_features(rng, index)
        logits = self._logits(z, index) + self._key_bias[key_index]
        won = rng.random(n) < 1.0 / (1.0 + np.exp(-logits))
        gain = np.exp(np.log(1.5) + 0.35 * rng.standard_normal(n))
        loss = -(1.0 + np.abs(0.1 * rng.standard_normal(n)))
        realized = np.where(won, gain, loss)
        self.outcomes_made += n
        return [
            {
                "outcome_id": f"o-{self.seed}-{i}",
                "key": self.keys[k],
                "ts": self.start_ts_ms + i * self.ms_per_event,
                "features": features,
                "label": int(w),
                "realized_rr": float(r),
            }
            for i, k, features, w, r in zip(
                index.tolist(),
                key_index.tolist(),
                _rows(raw),
                won.tolist(),
                realized.tolist(),
                strict=True,
            )
        ]

    def requests(self, n: int, at_outcome: int | None = None) -> list[dict[str, Any]]:
        """The next ``n`` signal requests, drawn in the regime of outcome ``at_outcome``.

        ``at_outcome`` defaults to the number of outcomes produced so far ("now").
        """
        now = self.outcomes_made if at_outcome is None else at_outcome
        rng = self._request_rng
        key_index = rng.integers(len(self.keys), size=n)
        _, raw = self._draw_features(rng, np.full(n, now))
        first = self.requests_made
        self.requests_made += n
        ts = self.start_ts_ms + now * self.ms_per_event
        return [
            {
                "request_id": f"r-{self.seed}-{first + j}",
                "key": self.keys[k],
                "ts": ts,
                "features": features,
            }
            for j, (k, features) in enumerate(zip(key_index.tolist(), _rows(raw), strict=True))
        ]

    def frame(self, n: int) -> pd.DataFrame:
        """The next ``n`` outcomes as a table (one column per feature), e.g. to train on."""
        return outcomes_frame(self.outcomes(n))

    def _regime_ids(self, index: np.ndarray) -> np.ndarray:
        passed = np.searchsorted(np.asarray(self.change_points, dtype=np.int64), index, "right")
        return passed % len(self.regimes)

    def _draw_features(
        self, rng: np.random.Generator, index: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = len(index)
        z = rng.standard_normal((n, len(FEATURE_SPECS)))
        phase = rng.uniform(0.0, 2.0 * np.pi, size=n)
        shifts = np.array([[r.shifts.get(name, 0.0) for name in FEATURES] for r in self.regimes])
        shifted = z + shifts[self._regime_ids(index)]
        raw = {
            spec.name: spec.raw(shifted[:, col], phase) for col, spec in enumerate(FEATURE_SPECS)
        }
        # The win model sees the phase through hour_sin, like any other standardised feature.
        z[:, FEATURES.index("hour_sin")] = np.sin(phase) * np.sqrt(2.0)
        return z, raw

    def _logits(self, z: np.ndarray, index: np.ndarray) -> np.ndarray:
        betas = np.array(
            [[r.coefficients.get(name, 0.0) for name in FEATURES] for r in self.regimes]
        )
        intercepts = np.array([r.intercept for r in self.regimes])
        ids = self._regime_ids(index)
        return np.einsum("ij,ij->i", z, betas[ids]) + intercepts[ids]


def _rows(raw: Mapping[str, np.ndarray]) -> list[dict[str, float]]:
    names = list(raw)
    columns = [raw[name].tolist() for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
