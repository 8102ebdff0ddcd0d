"""Cross-validation of a model family over the part of a window before its holdout.

Folds come from :func:`models.walk_forward.folds` (walk-forward by default: every fold trains
on the past only, purged in time). Each fold's training rows are split again in time for early
stopping, exactly as a retrain splits its window, so a fold's model is the model a retrain on
that past would have made. The gate's holdout rows are never touched. Tuning scores its
trials with this (:mod:`models.tuning`); a retrain with ``cv_folds`` records it
(:func:`models.candidate.train_candidate`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.families import ModelFamily, family
from models.training import (
    TrainConfig,
    classification_metrics,
    fit_model,
    predict_frame,
    temporal_split,
)
from models.walk_forward import folds

#: ``on_fold(number, mean log loss of the folds so far)``; may raise to stop (pruning).
FoldCallback = Callable[[int, float], None]


@dataclass(frozen=True)
class CrossValidation:
    """Each fold's rows, time bounds and metrics, and their mean and spread."""

    scheme: str
    folds: list[dict[str, Any]]

    @property
    def mean_log_loss(self) -> float:
        """The folds' mean log loss (what tuning minimises)."""
        return float(np.mean([f["metrics"]["log_loss"] for f in self.folds]))

    def as_metadata(self, config: TrainConfig) -> dict[str, Any]:
        """``metadata["cross_validation"]``."""
        names = ("log_loss", "base_log_loss", "roc_auc", "brier", "accuracy")
        summary: dict[str, Any] = {}
        for name in names:
            values = [f["metrics"][name] for f in self.folds if f["metrics"].get(name) is not None]
            if values:
                summary[name] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
        return {
            "scheme": self.scheme,
            "purge_s": config.purge_s,
            "embargo_s": config.embargo_s,
            "folds": self.folds,
            "summary": summary,
        }


def development_part(window: pd.DataFrame, holdout: pd.DataFrame, purge_ms: float) -> pd.DataFrame:
    """The rows of a (time-sorted) window that close ``purge_ms`` before its holdout."""
    if holdout.empty:
        return window
    ts = window["ts"].to_numpy()
    end = int(np.searchsorted(ts, holdout["ts"].iloc[0] - purge_ms, side="left"))
    return window.iloc[:end]


def cross_validate(
    frame: pd.DataFrame,
    features: Sequence[str],
    config: TrainConfig,
    count: int,
    chosen: ModelFamily | None = None,
    on_fold: FoldCallback | None = None,
) -> CrossValidation:
    """Fit and score ``config``'s family on ``count`` folds of ``frame`` (time-sorted, no
    holdout rows in it); folds whose training rows cannot be split are skipped."""
    chosen = chosen or family(config.family)
    columns = list(features)
    ts = frame["ts"].to_numpy()
    results: list[dict[str, Any]] = []
    for fold in folds(ts, count, config.purge_ms, config.embargo_ms, config.cv_scheme):
        past = frame.iloc[fold.train]
        test = frame.iloc[fold.test]
        if past["label"].nunique() < 2:
            continue
        inner = temporal_split(past, config, holdout=False)
        model = fit_model(chosen, inner, columns, config)
        labels = test["label"].to_numpy(np.float64)
        metrics = classification_metrics(labels, predict_frame(model, test, columns))
        base = np.full(len(test), float(past["label"].mean()))
        metrics["base_log_loss"] = classification_metrics(labels, base)["log_loss"]
        results.append({**fold.describe(ts), "rounds": model.rounds, "metrics": metrics})
        if on_fold is not None:
            on_fold(fold.number, float(np.mean([r["metrics"]["log_loss"] for r in results])))
    return CrossValidation(scheme=config.cv_scheme, folds=results)
