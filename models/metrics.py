"""Prequential (predict, then learn) metrics per model key, from River."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
from river import metrics

#: The three predictions scored on every outcome.
SOURCES: Final = ("online", "batch", "blend")


class BinnedROCAUC:
    """ROC AUC from counts of wins and losses per probability bin (exact to the bin width).

    Used instead of River's ``ROCAUC``: measured in the learner's profile, River's update is 11
    confusion-matrix updates (the largest single cost per outcome) and its state 11 matrices per
    source per key; this is one counter increment and two small integer arrays. Pairs in the
    same bin count as ties (half), as ``sklearn.metrics.roc_auc_score`` counts equal scores.

    >>> auc = BinnedROCAUC()
    >>> for won, p in [(True, 0.9), (False, 0.2), (True, 0.6), (False, 0.7)]:
    ...     auc.update(won, p)
    >>> auc.get()
    0.75
    """

    def __init__(self, bins: int = 100) -> None:
        self.bins = bins
        self.wins = np.zeros(bins, dtype=np.int64)
        self.losses = np.zeros(bins, dtype=np.int64)

    def update(self, won: bool, p_win: float) -> None:
        """Count one scored outcome."""
        index = min(int(p_win * self.bins), self.bins - 1)
        if won:
            self.wins[index] += 1
        else:
            self.losses[index] += 1

    def get(self) -> float:
        """P(a random win scores above a random loss), ties counted half; 0.5 if undefined."""
        n_wins, n_losses = int(self.wins.sum()), int(self.losses.sum())
        if not n_wins or not n_losses:
            return 0.5
        losses_below = np.concatenate([[0], np.cumsum(self.losses)[:-1]])
        pairs = np.sum(self.wins * (losses_below + 0.5 * self.losses))
        return float(pairs / (n_wins * n_losses))


@dataclass
class SourceMetrics:
    """Running log loss and accuracy (River) and ROC AUC of one prediction source."""

    log_loss: metrics.LogLoss = field(default_factory=metrics.LogLoss)
    accuracy: metrics.Accuracy = field(default_factory=metrics.Accuracy)
    roc_auc: BinnedROCAUC = field(default_factory=BinnedROCAUC)
    n: int = 0

    def update(self, won: bool, p_win: float) -> None:
        """Score one prediction ``p_win`` against the outcome ``won``."""
        self.log_loss.update(won, p_win)
        self.accuracy.update(won, p_win > 0.5)
        self.roc_auc.update(won, p_win)
        self.n += 1

    def summary(self) -> dict[str, float | int | None]:
        """Plain numbers for status views (None until something was scored)."""
        if not self.n:
            return {"n": 0, "accuracy": None, "log_loss": None, "roc_auc": None}
        return {
            "n": self.n,
            "accuracy": float(self.accuracy.get()),
            "log_loss": float(self.log_loss.get()),
            "roc_auc": float(self.roc_auc.get()),
        }


@dataclass
class PrequentialMetrics:
    """Metrics of the online, batch and blended predictions of one model key.

    A source is updated only on outcomes for which it produced a prediction: the batch source
    only while a batch model is active, the blend only when a signal would have been emitted.
    """

    sources: dict[str, SourceMetrics] = field(
        default_factory=lambda: {name: SourceMetrics() for name in SOURCES}
    )

    def update(self, source: str, won: bool, p_win: float | None) -> None:
        """Score one source's prediction; ``None`` (no prediction) is skipped."""
        if p_win is not None:
            self.sources[source].update(won, p_win)

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Plain numbers per source."""
        return {name: source.summary() for name, source in self.sources.items()}
