"""What a backtest reports: prequential accuracy and log loss per part, per segment and per key,
and the trading metrics of the trades a signal would have taken at a threshold.

Pure functions over the scores the learner gave each outcome *before* learning it, so the
numbers are the ones a live deployment would have seen.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from models.evaluation import hits, log_loss

#: Prequential log loss clips probabilities like the live metrics (``models.metrics``).
EPS = 1e-15


@dataclass
class ScoredOutcomes:
    """Each outcome of a replay, in order: its key, label, realised R and the parts' scores
    (NaN where a part did not score it)."""

    keys: list[str] = field(default_factory=list)
    won: list[bool] = field(default_factory=list)
    realized_rr: list[float] = field(default_factory=list)
    p_online: list[float] = field(default_factory=list)
    p_batch: list[float] = field(default_factory=list)
    score: list[float] = field(default_factory=list)

    def add(
        self,
        key: str,
        won: bool,
        realized_rr: float | None,
        p_online: float,
        p_batch: float | None,
        score: float | None,
    ) -> None:
        """Record one outcome's prequential scores."""
        self.keys.append(key)
        self.won.append(won)
        self.realized_rr.append(math.nan if realized_rr is None else realized_rr)
        self.p_online.append(p_online)
        self.p_batch.append(math.nan if p_batch is None else p_batch)
        self.score.append(math.nan if score is None else score)

    def __len__(self) -> int:
        return len(self.won)

    def part(self, name: str) -> np.ndarray:
        """The probabilities of ``online``, ``batch`` or ``blend`` (the signal's score)."""
        values = {"online": self.p_online, "batch": self.p_batch, "blend": self.score}[name]
        return np.asarray(values, dtype=float)

    def labels(self) -> np.ndarray:
        """1.0 for a won trade, else 0.0."""
        return np.asarray(self.won, dtype=float)


@dataclass(frozen=True)
class PartMetrics:
    """Prequential numbers of one part over some outcomes (those it scored)."""

    n: int
    accuracy: float | None
    log_loss: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain numbers (JSON)."""
        return {"n": self.n, "accuracy": self.accuracy, "log_loss": self.log_loss}


def part_metrics(probabilities: np.ndarray, labels: np.ndarray) -> PartMetrics:
    """Accuracy (threshold 0.5) and mean log loss over the outcomes the part scored.

    >>> part_metrics(np.array([0.9, np.nan, 0.2]), np.array([1.0, 1.0, 1.0])).accuracy
    0.5
    """
    scored = ~np.isnan(probabilities)
    n = int(scored.sum())
    if n == 0:
        return PartMetrics(0, None, None)
    p, y = probabilities[scored], labels[scored]
    return PartMetrics(n, float(hits(p, y).mean()), log_loss(p, y, EPS))


def segment_bounds(n: int, cuts: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, end)`` outcome ranges between the cut points (outcome counts), then the whole.

    >>> segment_bounds(10, [4, 7])
    [(0, 4), (4, 7), (7, 10), (0, 10)]
    """
    points = [0, *sorted(c for c in set(cuts) if 0 < c < n), n]
    ranges = list(itertools.pairwise(points))
    return [*ranges, (0, n)] if len(ranges) > 1 else ranges
