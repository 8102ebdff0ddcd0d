"""Prequential evaluation helpers shared by tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.online import OnlineLearner


def prequential_probabilities(
    learner: OnlineLearner, outcomes: Sequence[Mapping[str, Any]]
) -> np.ndarray:
    """Predict-then-learn over outcome messages; the probability of a win given before each
    outcome was learned."""
    probabilities = np.empty(len(outcomes))
    for i, outcome in enumerate(outcomes):
        probabilities[i] = learner.predict_proba(outcome["features"])
        learner.learn(outcome["features"], outcome["label"] == 1)
    return probabilities


def prequential_hits(learner: OnlineLearner, outcomes: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Predict-then-learn over outcome messages; 1.0 where the prediction was right."""
    labels = np.array([outcome["label"] for outcome in outcomes], dtype=float)
    return hits(prequential_probabilities(learner, outcomes), labels)


def hits(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1.0 where the probability was on the right side of 0.5 for the 0/1 label.

    >>> hits(np.array([0.7, 0.2, 0.6]), np.array([1, 0, 0])).tolist()
    [1.0, 1.0, 0.0]
    """
    return ((probabilities > 0.5) == (labels == 1)).astype(float)


def log_loss(probabilities: np.ndarray, labels: np.ndarray, eps: float = 1e-15) -> float:
    """Mean binary log loss (probabilities clipped to ``[eps, 1 - eps]``, as scikit-learn).

    >>> round(log_loss(np.array([0.5, 0.5]), np.array([1, 0])), 4)
    0.6931
    """
    clipped = np.clip(probabilities, eps, 1 - eps)
    return float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))


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
