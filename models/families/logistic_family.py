"""The baseline: scikit-learn's logistic regression on standardised features.

The validation rows choose the regularisation ``C`` (its "early stopping"). The artifact is
the fitted numbers as JSON (means, scales, coefficients, intercept): scikit-learn's own
persistence is pickle, which the store never holds, and four arrays need no library (floats
round-trip exactly through orjson). Predictions are computed from those numbers, before and
after a reload alike, so a reloaded model scores identically.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from models.families.contract import (
    FitConfig,
    FitData,
    FittedModel,
    ModelFamily,
    ModelLoadError,
    Progress,
)
from models.families.registry import register_family

#: Regularisation strengths the validation rows choose from (unless ``params`` sets ``C``).
C_GRID = (0.01, 0.1, 1.0, 10.0)


class LogisticModel(FittedModel):
    """p = sigmoid(((x - mean) / scale) . coef + intercept)."""

    family = "logistic"

    def __init__(
        self,
        mean: np.ndarray,
        scale: np.ndarray,
        coef: np.ndarray,
        intercept: float,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(params)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)

    @property
    def rounds(self) -> int:
        """One: a linear model has no rounds."""
        return 1

    def _standardised(self, matrix: np.ndarray) -> np.ndarray:
        return (np.asarray(matrix, dtype=np.float64) - self.mean) / self.scale

    def _probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Win probabilities."""
        return expit(self._standardised(matrix) @ self.coef + self.intercept)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """coef_j * z_j per feature and the intercept (exact: the model is additive)."""
        parts = self._standardised(matrix) * self.coef
        return np.column_stack([parts, np.full(len(parts), self.intercept)])

    def importance(self) -> tuple[str, np.ndarray]:
        """|coefficient| on standardised features."""
        return "abs_standardized_coefficient", np.abs(self.coef)

    def to_bytes(self) -> bytes:
        """The fitted numbers as JSON."""
        return orjson.dumps(
            {
                "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "coef": self.coef.tolist(),
                "intercept": self.intercept,
                "parameters": self.params,
            }
        )


@register_family
class LogisticFamily(ModelFamily):
    """scikit-learn's ``LogisticRegression`` behind a ``StandardScaler``: the baseline every
    boosted family must beat."""

    name = "logistic"
    title = "logistic regression"
    library = "sklearn"
    model_file = "model.json"
    model_format = "logistic-json"

    def fit(
        self,
        train: FitData,
        valid: FitData | None,
        config: FitConfig,
        progress: Progress | None = None,
    ) -> LogisticModel:
        """Standardise, fit for each C (or the configured one), keep the best on validation."""
        scaler = StandardScaler().fit(train.matrix, sample_weight=train.weights)
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        z_train = (train.matrix - scaler.mean_) / scale
        weights = train.weights
        positive = config.positive_weight(train.labels)
        if positive != 1.0:
            balance = np.where(train.labels == 1, positive, 1.0)
            weights = balance if weights is None else weights * balance
        if "C" in config.params:
            grid: tuple[float, ...] = (float(config.params["C"]),)
        else:
            grid = C_GRID if valid is not None else (1.0,)
        best: tuple[float, LogisticModel] | None = None
        for step, c in enumerate(grid):
            fitted = LogisticRegression(C=c, max_iter=1000, random_state=config.seed).fit(
                z_train, train.labels, sample_weight=weights
            )
            model = LogisticModel(
                scaler.mean_, scale, fitted.coef_[0], fitted.intercept_[0], {"C": c}
            )
            loss = 0.0 if valid is None else _log_loss(model, valid)
            if progress is not None and valid is not None:
                progress(step, loss)
            if best is None or loss < best[0]:
                best = (loss, model)
        assert best is not None
        return best[1]

    def load(self, data: bytes, threads: int = 1) -> LogisticModel:
        """The model from its JSON numbers."""
        try:
            numbers = orjson.loads(data)
            mean, scale, coef = (
                np.asarray(numbers[name], dtype=np.float64) for name in ("mean", "scale", "coef")
            )
            intercept = float(numbers["intercept"])
            params = dict(numbers.get("parameters") or {})
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"not a logistic model: {type(exc).__name__}") from None
        if not (mean.ndim == 1 and mean.shape == scale.shape == coef.shape):
            raise ModelLoadError("not a logistic model: mean, scale and coef differ in shape")
        if not (np.isfinite(coef).all() and np.isfinite(intercept) and (scale > 0).all()):
            raise ModelLoadError("not a logistic model: non-finite numbers")
        return LogisticModel(mean, scale, coef, intercept, params)


def _log_loss(model: LogisticModel, data: FitData) -> float:
    p = np.clip(model.predict_proba(data.matrix), 1e-15, 1 - 1e-15)
    return float(-np.mean(data.labels * np.log(p) + (1 - data.labels) * np.log1p(-p)))
