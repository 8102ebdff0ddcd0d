"""Why a model says what it says: global importance and SHAP values per feature.

Every family gives additive per-row contributions to the log-odds (exact tree SHAP for the
boosted families, XGBoost's own ``pred_contribs`` for the default one, so no SHAP library is
needed; coefficient x standardised value for the logistic baseline). A version stores its
importance and mean |SHAP| over a sample of its validation rows; a signal may carry its own top
contributions (``signal.explain``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.families import FittedModel

#: Rows of the validation part the stored mean |SHAP| is computed on (evenly spaced).
SHAP_ROWS = 5_000


def _shares(values: np.ndarray, features: Sequence[str]) -> dict[str, float]:
    total = float(np.sum(values))
    return {
        name: (float(v) / total if total > 0 else 0.0)
        for name, v in zip(features, values, strict=True)
    }


def explanation(
    model: FittedModel, matrix: np.ndarray, features: Sequence[str], rows: int = SHAP_ROWS
) -> dict[str, Any]:
    """``metadata["explanation"]``: importance shares (of the family's kind) and mean |SHAP|
    per feature over up to ``rows`` evenly spaced rows of ``matrix``."""
    kind, importance = model.importance()
    if len(matrix) > rows:
        matrix = matrix[np.linspace(0, len(matrix) - 1, rows).astype(int)]
    contributions = model.contributions(matrix) if len(matrix) else np.zeros((0, len(features)))
    mean_abs = np.abs(contributions[:, : len(features)]).mean(axis=0) if len(matrix) else None
    return {
        "importance": {"kind": kind, "shares": _shares(importance, features)},
        "mean_abs_shap": None
        if mean_abs is None
        else {name: float(v) for name, v in zip(features, mean_abs, strict=True)},
        "shap_rows": len(matrix),
    }


def top_contributions(
    model: FittedModel, matrix: np.ndarray, features: Sequence[str], top: int
) -> list[dict[str, float]]:
    """Each row's ``top`` largest contributions to the log-odds by size, feature -> value."""
    if len(matrix) == 0:
        return []
    values = model.contributions(matrix)[:, : len(features)]
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :top]
    return [
        {features[j]: round(float(row[j]), 6) for j in picks}
        for row, picks in zip(values, order, strict=True)
    ]
