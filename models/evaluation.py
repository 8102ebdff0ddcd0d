"""Prequential evaluation helpers shared by tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.online import OnlineLearner


def prequential_hits(learner: OnlineLearner, outcomes: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Predict-then-learn over outcome messages; 1.0 where the prediction was right."""
    hits = np.empty(len(outcomes))
    for i, outcome in enumerate(outcomes):
        won = outcome["label"] == 1
        hits[i] = (learner.predict_proba(outcome["features"]) > 0.5) == won
        learner.learn(outcome["features"], won)
    return hits


def outcomes_to_recover(
    hits: np.ndarray,
    change_at: int,
    window: int = 300,
    reference: int = 10_000,
    share: float = 0.95,
) -> tuple[int, float]:
    """Outcomes after ``change_at`` until the rolling accuracy is back to ``share`` of before.

    Returns (outcomes to recover, accuracy over the ``reference`` outcomes before the change).
    If it never recovers, the count is the number of outcomes after the change.
    """
    before = float(hits[change_at - reference : change_at].mean())
    rolling = np.convolve(hits[change_at:], np.ones(window) / window, mode="valid")
    recovered = np.flatnonzero(rolling >= share * before)
    count = int(recovered[0]) + window if recovered.size else len(hits) - change_at
    return count, before
