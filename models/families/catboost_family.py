"""CatBoost (optional extra ``catboost``): symmetric trees, overfitting detector on
validation log loss with the best model kept, saved in CatBoost's ``cbm`` format."""

from __future__ import annotations

import tempfile
from pathlib import Path
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


class CatBoostModel(FittedModel):
    """A fitted ``CatBoostClassifier``."""

    family = "catboost"

    def __init__(self, model: Any, params: dict[str, Any] | None = None, threads: int = 1) -> None:
        super().__init__(params, threads)
        self.model = model

    @property
    def rounds(self) -> int:
        """Trees in the model."""
        return int(self.model.tree_count_)

    def _probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Win probabilities."""
        return np.asarray(
            self.model.predict_proba(matrix, thread_count=self.threads)[:, 1], dtype=np.float64
        )

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """CatBoost's SHAP values, bias last."""
        from catboost import Pool

        return np.asarray(
            self.model.get_feature_importance(
                Pool(matrix), type="ShapValues", thread_count=self.threads
            ),
            dtype=np.float64,
        )

    def importance(self) -> tuple[str, np.ndarray]:
        """CatBoost's PredictionValuesChange per feature."""
        return "prediction_values_change", np.asarray(
            self.model.get_feature_importance(), dtype=np.float64
        )

    def to_bytes(self) -> bytes:
        """The ``cbm`` file's bytes (CatBoost saves to files only)."""
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "model.cbm"
            self.model.save_model(str(path), format="cbm")
            return path.read_bytes()


@register_family
class CatBoostFamily(ModelFamily):
    """Gradient-boosted symmetric trees with CatBoost."""

    name = "catboost"
    title = "CatBoost"
    extra = "catboost"
    library = "catboost"
    model_file = "model.cbm"
    model_format = "catboost-cbm"

    def params(self, train: FitData, config: FitConfig) -> dict[str, Any]:
        """CatBoost's parameters for ``config`` (``config.params`` override them)."""
        return {
            "loss_function": "Logloss",
            "iterations": config.rounds,
            "learning_rate": config.learning_rate,
            "depth": config.max_depth,
            "bootstrap_type": "Bernoulli",
            "subsample": config.subsample,
            "rsm": config.colsample,
            "border_count": config.max_bin,
            "scale_pos_weight": config.positive_weight(train.labels),
            "thread_count": config.threads or -1,
            "random_seed": config.seed,
            "verbose": False,
            "allow_writing_files": False,
            **config.params,
        }

    def fit(
        self,
        train: FitData,
        valid: FitData | None,
        config: FitConfig,
        progress: Progress | None = None,
    ) -> CatBoostModel:
        """``CatBoostClassifier.fit`` with the ``Iter`` overfitting detector."""
        catboost = self.module()
        params = self.params(train, config)
        extra: dict[str, Any] = {}
        if valid is not None:
            params = {"od_type": "Iter", "od_wait": config.early_stopping_rounds, **params}
            extra = {"eval_set": (valid.matrix, valid.labels), "use_best_model": True}
        model = catboost.CatBoostClassifier(**params)
        model.fit(train.matrix, train.labels, sample_weight=train.weights, **extra)
        if progress is not None and valid is not None:
            losses = model.get_evals_result().get("validation", {}).get("Logloss", [])
            if losses:
                progress(len(losses) - 1, float(losses[-1]))
        return CatBoostModel(model, params)

    def load(self, data: bytes, threads: int = 1) -> CatBoostModel:
        """A classifier from ``cbm`` bytes."""
        catboost = self.module()
        model = catboost.CatBoostClassifier()
        try:
            model.load_model(blob=bytes(data))
        except (catboost.CatBoostError, ValueError) as exc:
            raise ModelLoadError(first_line(exc)) from None
        return CatBoostModel(model, threads=threads)
