"""XGBoost, the default family: histogram trees, early stopping on validation log loss, the
booster saved in XGBoost's UBJSON format. Predictions use ``inplace_predict`` (no DMatrix per
batch), the scorer's fast path since the first version."""

from __future__ import annotations

from typing import Any

import numpy as np
import xgboost as xgb

from models.families.contract import (
    FitConfig,
    FitData,
    FittedModel,
    ModelFamily,
    ModelLoadError,
    Progress,
    first_line,
)
from models.families.registry import register_family


class XGBoostModel(FittedModel):
    """A booster cut at its best round."""

    family = "xgboost"

    def __init__(
        self, booster: xgb.Booster, params: dict[str, Any] | None = None, threads: int = 1
    ) -> None:
        super().__init__(params, threads)
        self.booster = booster

    @property
    def rounds(self) -> int:
        """Boosted rounds in the booster."""
        return int(self.booster.num_boosted_rounds())

    def _probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Win probabilities via ``inplace_predict``."""
        return np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Exact tree SHAP values (XGBoost's ``pred_contribs``), bias last."""
        return np.asarray(
            self.booster.predict(xgb.DMatrix(matrix), pred_contribs=True), dtype=np.float64
        )

    def importance(self) -> tuple[str, np.ndarray]:
        """Total split gain per feature."""
        scores = self.booster.get_score(importance_type="total_gain")
        n = self.booster.num_features()
        return "total_gain", np.array([float(scores.get(f"f{i}", 0.0)) for i in range(n)])

    def to_bytes(self) -> bytes:
        """UBJSON."""
        return bytes(self.booster.save_raw(raw_format="ubj"))


@register_family
class XGBoostFamily(ModelFamily):
    """Gradient-boosted trees with XGBoost (``hist``)."""

    name = "xgboost"
    title = "XGBoost"
    library = "xgboost"
    model_file = "model.ubj"
    model_format = "xgboost-ubj"
    continues_training = True

    def params(self, train: FitData, config: FitConfig) -> dict[str, Any]:
        """XGBoost's parameters for ``config`` (``config.params`` override them)."""
        return {
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "tree_method": "hist",
            "max_bin": config.max_bin,
            "max_depth": config.max_depth,
            "eta": config.learning_rate,
            "subsample": config.subsample,
            "colsample_bytree": config.colsample,
            "min_child_weight": config.min_child_weight,
            "scale_pos_weight": config.positive_weight(train.labels),
            "nthread": config.threads,
            "seed": config.seed,
            **config.params,
        }

    def fit(
        self,
        train: FitData,
        valid: FitData | None,
        config: FitConfig,
        progress: Progress | None = None,
    ) -> XGBoostModel:
        """``xgb.train`` on a QuantileDMatrix; early stopping keeps the best round."""
        return self._train(train, valid, config, progress, None)

    def continue_fit(
        self,
        start: FittedModel,
        train: FitData,
        valid: FitData | None,
        config: FitConfig,
        progress: Progress | None = None,
    ) -> XGBoostModel:
        """XGBoost's continued training (``xgb_model``): the start's trees stay, at most
        ``config.rounds`` new ones are added, early-stopped on ``valid``."""
        if not isinstance(start, XGBoostModel):
            raise TypeError(f"an XGBoost model continues only an XGBoost model, not {start.family}")
        return self._train(train, valid, config, progress, start.booster)

    def _train(
        self,
        train: FitData,
        valid: FitData | None,
        config: FitConfig,
        progress: Progress | None,
        start: xgb.Booster | None,
    ) -> XGBoostModel:
        params = self.params(train, config)
        dtrain = xgb.QuantileDMatrix(
            train.matrix, label=train.labels, weight=train.weights, max_bin=params["max_bin"]
        )
        evals = []
        if valid is not None:
            dvalid = xgb.QuantileDMatrix(
                valid.matrix, label=valid.labels, ref=dtrain, max_bin=params["max_bin"]
            )
            evals = [(dvalid, "validation")]
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=config.rounds,
            evals=evals,
            early_stopping_rounds=config.early_stopping_rounds if valid is not None else None,
            verbose_eval=False,
            callbacks=[_Progress(progress)] if progress and valid is not None else [],
            xgb_model=start,
        )
        if valid is not None:
            booster = booster[: booster.best_iteration + 1]
        return XGBoostModel(booster, params)

    def load(self, data: bytes, threads: int = 1) -> XGBoostModel:
        """A booster from UBJSON (or XGBoost's JSON)."""
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(data))
        except (xgb.core.XGBoostError, MemoryError) as exc:
            raise ModelLoadError(first_line(exc)) from None
        booster.set_param({"nthread": threads})
        return XGBoostModel(booster, threads=threads)


class _Progress(xgb.callback.TrainingCallback):
    """Reports validation log loss every 25 rounds so long trainings show progress."""

    def __init__(self, report: Progress) -> None:
        super().__init__()
        self._report = report

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        if epoch % 25 == 0:
            self._report(epoch, float(evals_log["validation"]["logloss"][-1]))
        return False
