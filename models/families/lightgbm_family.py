"""LightGBM (optional extra ``lightgbm``): leaf-wise trees, early stopping on validation log
loss, saved as LightGBM's own text model."""

from __future__ import annotations

from typing import Any

import numpy as np

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


class LightGBMModel(FittedModel):
    """A LightGBM booster (only its best iterations are saved)."""

    family = "lightgbm"

    def __init__(
        self, booster: Any, params: dict[str, Any] | None = None, threads: int = 1
    ) -> None:
        super().__init__(params, threads)
        self.booster = booster

    @property
    def rounds(self) -> int:
        """Trees in the model."""
        return int(self.booster.current_iteration())

    def _probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Win probabilities."""
        return np.asarray(self.booster.predict(matrix, num_threads=self.threads), dtype=np.float64)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Tree SHAP values (``pred_contrib``), bias last."""
        return np.asarray(
            self.booster.predict(matrix, pred_contrib=True, num_threads=self.threads),
            dtype=np.float64,
        )

    def importance(self) -> tuple[str, np.ndarray]:
        """Total split gain per feature."""
        return "total_gain", np.asarray(
            self.booster.feature_importance(importance_type="gain"), dtype=np.float64
        )

    def to_bytes(self) -> bytes:
        """LightGBM's text model."""
        return self.booster.model_to_string().encode()


@register_family
class LightGBMFamily(ModelFamily):
    """Gradient-boosted trees with LightGBM."""

    name = "lightgbm"
    title = "LightGBM"
    extra = "lightgbm"
    library = "lightgbm"
    model_file = "model.txt"
    model_format = "lightgbm-text"

    def params(self, train: FitData, config: FitConfig) -> dict[str, Any]:
        """LightGBM's parameters for ``config`` (``config.params`` override them)."""
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "learning_rate": config.learning_rate,
            "max_depth": config.max_depth,
            "num_leaves": min(2**config.max_depth - 1, 255) if config.max_depth > 1 else 2,
            "bagging_fraction": config.subsample,
            "bagging_freq": 1 if config.subsample < 1 else 0,
            "feature_fraction": config.colsample,
            "min_sum_hessian_in_leaf": config.min_child_weight,
            "max_bin": config.max_bin,
            "scale_pos_weight": config.positive_weight(train.labels),
            "num_threads": config.threads,
            "seed": config.seed,
            "deterministic": True,
            "verbosity": -1,
            **config.params,
        }

    def fit(
        self,
        train: FitData,
        valid: FitData | None,
        config: FitConfig,
        progress: Progress | None = None,
    ) -> LightGBMModel:
        """``lightgbm.train`` with the ``early_stopping`` callback."""
        lgb = self.module()
        params = self.params(train, config)
        dtrain = lgb.Dataset(train.matrix, label=train.labels, weight=train.weights, params=params)
        valid_sets, callbacks = [], []
        if valid is not None:
            valid_sets = [lgb.Dataset(valid.matrix, label=valid.labels, reference=dtrain)]
            callbacks.append(lgb.early_stopping(config.early_stopping_rounds, verbose=False))
            if progress is not None:
                callbacks.append(_progress(progress))
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=config.rounds,
            valid_sets=valid_sets,
            valid_names=["validation"] if valid_sets else None,
            callbacks=callbacks,
        )
        if valid is not None and booster.best_iteration > 0:
            booster = lgb.Booster(model_str=booster.model_to_string(booster.best_iteration))
        return LightGBMModel(booster, params)

    def load(self, data: bytes, threads: int = 1) -> LightGBMModel:
        """A booster from LightGBM's text model."""
        lgb = self.module()
        try:
            booster = lgb.Booster(model_str=data.decode())
        except (lgb.basic.LightGBMError, UnicodeDecodeError, ValueError) as exc:
            raise ModelLoadError(first_line(exc)) from None
        return LightGBMModel(booster, threads=threads)


def _progress(report: Progress) -> Any:
    def callback(env: Any) -> None:
        if env.iteration % 25 == 0 and env.evaluation_result_list:
            report(env.iteration, float(env.evaluation_result_list[0][2]))

    return callback
