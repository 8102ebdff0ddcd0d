"""Prequential (predict, then learn) metrics per model key: log loss, accuracy, ROC AUC.

Plain-Python running sums instead of River's ``LogLoss``/``Accuracy``/``ROCAUC`` objects. The
numbers are the same (log loss uses River's clamping and ``stats.Mean`` update, term for term),
the cost is not: measured on the learner processor (``bench.learner_throughput``, 100 keys,
three sources scored per outcome), River's metric objects took 11.5 us of an outcome's 61 us --
a confusion-matrix update per accuracy, a dispatch chain per log loss, numpy scalar writes per
AUC bin -- and these take about 1.5 us.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

#: The three predictions scored on every outcome.
SOURCES: Final = ("online", "batch", "blend")

#: River's probability clamp for the log loss (``metrics.base.ClassificationMetric``).
_P_MIN: Final = 1e-15
_P_MAX: Final = 1 - 1e-15


class BinnedROCAUC:
    """ROC AUC from counts of wins and losses per probability bin (exact to the bin width).

    Used instead of River's ``ROCAUC``: measured in the learner's profile, River's update is 11
    confusion-matrix updates (the largest single cost per outcome) and its state 11 matrices per
    source per key; this is one counter increment and two small integer lists. Pairs in the
    same bin count as ties (half), as ``sklearn.metrics.roc_auc_score`` counts equal scores.

    >>> auc = BinnedROCAUC()
    >>> for won, p in [(True, 0.9), (False, 0.2), (True, 0.6), (False, 0.7)]:
    ...     auc.update(won, p)
    >>> auc.get()
    0.75
    """

    def __init__(self, bins: int = 100) -> None:
        self.bins = bins
        self.wins = [0] * bins
        self.losses = [0] * bins

    def update(self, won: bool, p_win: float) -> None:
        """Count one scored outcome."""
        index = min(int(p_win * self.bins), self.bins - 1)
        if won:
            self.wins[index] += 1
        else:
            self.losses[index] += 1

    def get(self) -> float:
        """P(a random win scores above a random loss), ties counted half; 0.5 if undefined."""
        n_wins, n_losses = sum(self.wins), sum(self.losses)
        if not n_wins or not n_losses:
            return 0.5
        pairs, losses_below = 0.0, 0
        for wins, losses in zip(self.wins, self.losses, strict=True):
            pairs += wins * (losses_below + 0.5 * losses)
            losses_below += losses
        return pairs / (n_wins * n_losses)


@dataclass
class SourceMetrics:
    """Running log loss, accuracy and ROC AUC of one prediction source."""

    n: int = 0
    log_loss_mean: float = 0.0
    correct: int = 0
    roc_auc: BinnedROCAUC = field(default_factory=BinnedROCAUC)

    def update(self, won: bool, p_win: float, tally: Tally | None = None) -> None:
        """Score one prediction ``p_win`` against the outcome ``won`` (and count it in
        ``tally`` too: the worker-wide sums use the same loss and the same rule)."""
        p = _P_MIN if p_win < _P_MIN else _P_MAX if p_win > _P_MAX else p_win
        loss = -math.log(p) if won else -math.log(1 - p)
        right = (p_win > 0.5) == won
        self.n += 1
        self.log_loss_mean += (1.0 / self.n) * (loss - self.log_loss_mean)
        if right:
            self.correct += 1
        if tally is not None:
            tally.n += 1
            tally.log_loss += loss
            if right:
                tally.correct += 1
        roc = self.roc_auc  # BinnedROCAUC.update, inlined (three sources per outcome)
        index = min(int(p_win * roc.bins), roc.bins - 1)
        if won:
            roc.wins[index] += 1
        else:
            roc.losses[index] += 1

    def summary(self) -> dict[str, float | int | None]:
        """Plain numbers for status views (None until something was scored)."""
        if not self.n:
            return {"n": 0, "accuracy": None, "log_loss": None, "roc_auc": None}
        return {
            "n": self.n,
            "accuracy": self.correct / self.n,
            "log_loss": self.log_loss_mean,
            "roc_auc": self.roc_auc.get(),
        }


@dataclass
class Tally:
    """Sums of scored predictions (count, correct ones, log loss) to be drained into
    counters: the worker-wide prequential numbers, over every key it learns (filled by
    :meth:`SourceMetrics.update`)."""

    n: int = 0
    correct: int = 0
    log_loss: float = 0.0

    def drain(self) -> tuple[int, int, float]:
        """The sums so far, starting over at zero."""
        sums = (self.n, self.correct, self.log_loss)
        self.n, self.correct, self.log_loss = 0, 0, 0.0
        return sums


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
