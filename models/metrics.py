"""Prequential (predict, then learn) metrics per model key, from River."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from river import metrics

#: The three predictions scored on every outcome.
SOURCES: Final = ("online", "batch", "blend")


@dataclass
class SourceMetrics:
    """Running log loss, accuracy and ROC AUC of one prediction source."""

    log_loss: metrics.LogLoss = field(default_factory=metrics.LogLoss)
    accuracy: metrics.Accuracy = field(default_factory=metrics.Accuracy)
    roc_auc: metrics.ROCAUC = field(default_factory=metrics.ROCAUC)
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
