"""Training the batch XGBoost model on a window of closed trades, in time order."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn import metrics as skm

log = logging.getLogger(__name__)


class TrainingDataError(ValueError):
    """The training data cannot be used (missing columns, bad labels, too few rows)."""


@dataclass(frozen=True)
class TrainConfig:
    """XGBoost hyper-parameters and the temporal validation split."""

    num_boost_round: int = 400
    early_stopping_rounds: int = 30
    max_depth: int = 4
    eta: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 5.0
    validation_fraction: float = 0.2
    threads: int = 0  # 0 = all cores
    seed: int = 0
    min_rows: int = 100


@dataclass(frozen=True)
class TrainedModel:
    """A trained booster plus the metadata that goes next to it in the model store."""

    booster: xgb.Booster
    metadata: dict[str, Any]

    def model_bytes(self) -> bytes:
        """The booster in XGBoost's native UBJSON format."""
        return bytes(self.booster.save_raw(raw_format="ubj"))


def load_outcomes_file(path: str | Path) -> pd.DataFrame:
    """Read closed trades from CSV or Parquet (one column per feature, plus ts and label)."""
    path = Path(path)
    if not path.exists():
        raise TrainingDataError(f"training file {path} does not exist")
    if path.suffix.lower() in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    raise TrainingDataError(f"training file {path} must be .csv or .parquet")


def outcomes_frame(outcomes: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Trade-outcome messages as a table: ts, key, label, realized_rr, one column per feature."""
    frame = pd.DataFrame.from_records([o["features"] for o in outcomes])
    frame.insert(0, "realized_rr", [o.get("realized_rr") for o in outcomes])
    frame.insert(0, "label", [o["label"] for o in outcomes])
    frame.insert(0, "key", [o["key"] for o in outcomes])
    frame.insert(0, "ts", [o["ts"] for o in outcomes])
    return frame


def train_batch_model(
    frame: pd.DataFrame,
    features: Sequence[str],
    config: TrainConfig = TrainConfig(),
    source: str = "dataframe",
    progress: Callable[[int, float], None] | None = None,
) -> TrainedModel:
    """Train on the oldest rows, early-stop on the newest ``validation_fraction`` (no shuffling).

    ``progress(round, validation_logloss)`` is called every 25 boosting rounds.
    """
    data = _validated(frame, features, config)
    n_valid = max(1, int(len(data) * config.validation_fraction))
    train, valid = data.iloc[:-n_valid], data.iloc[-n_valid:]
    dtrain = xgb.DMatrix(train[list(features)].to_numpy(np.float64), label=train["label"])
    dvalid = xgb.DMatrix(valid[list(features)].to_numpy(np.float64), label=valid["label"])
    params = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_depth": config.max_depth,
        "eta": config.eta,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "min_child_weight": config.min_child_weight,
        "nthread": config.threads,
        "seed": config.seed,
    }
    callbacks = [_Progress(progress)] if progress else []
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=config.num_boost_round,
        evals=[(dvalid, "validation")],
        early_stopping_rounds=config.early_stopping_rounds,
        verbose_eval=False,
        callbacks=callbacks,
    )
    best = booster[: booster.best_iteration + 1]
    p_valid = best.predict(dvalid)
    metadata = {
        "features": list(features),
        "rows": {"train": len(train), "validation": len(valid)},
        "window": {
            "first_ts": _int_or_none(data["ts"].iloc[0]),
            "last_ts": _int_or_none(data["ts"].iloc[-1]),
        },
        "source": source,
        "hyperparameters": {**asdict(config), "best_iteration": int(booster.best_iteration)},
        "validation_metrics": classification_metrics(valid["label"].to_numpy(), p_valid),
        "reference": feature_reference(train, features),
    }
    return TrainedModel(booster=best, metadata=metadata)


def classification_metrics(labels: np.ndarray, p_win: np.ndarray) -> dict[str, float | None]:
    """Log loss, ROC AUC, Brier score and accuracy of probabilities against 0/1 labels."""
    clipped = np.clip(p_win, 1e-15, 1 - 1e-15)
    both_classes = len(np.unique(labels)) == 2
    return {
        "log_loss": float(skm.log_loss(labels, clipped, labels=[0, 1])),
        "roc_auc": float(skm.roc_auc_score(labels, p_win)) if both_classes else None,
        "brier": float(skm.brier_score_loss(labels, p_win)),
        "accuracy": float(skm.accuracy_score(labels, p_win > 0.5)),
    }


def feature_reference(frame: pd.DataFrame, features: Sequence[str]) -> dict[str, Any]:
    """Deciles, mean and sd of each feature in the training rows (for later drift checks)."""
    quantiles = np.linspace(0.0, 1.0, 11)
    return {
        name: {
            "quantiles": [float(q) for q in np.quantile(frame[name], quantiles)],
            "mean": float(frame[name].mean()),
            "std": float(frame[name].std(ddof=0)),
        }
        for name in features
    }


def _validated(frame: pd.DataFrame, features: Sequence[str], config: TrainConfig) -> pd.DataFrame:
    missing = [c for c in ("ts", "label", *features) if c not in frame.columns]
    if missing:
        raise TrainingDataError(f"training data lacks columns {missing}")
    labels = frame["label"]
    if not labels.isin([0, 1]).all():
        raise TrainingDataError("training labels must all be 0 or 1")
    values = frame[list(features)].to_numpy(np.float64)
    if not np.isfinite(values).all():
        raise TrainingDataError("training features must all be finite numbers")
    if len(frame) < config.min_rows:
        raise TrainingDataError(f"need at least {config.min_rows} rows, got {len(frame)}")
    if labels.nunique() < 2:
        raise TrainingDataError("training data holds only one class")
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def _int_or_none(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)


class _Progress(xgb.callback.TrainingCallback):
    """Reports validation log loss every 25 rounds so long trainings show progress."""

    def __init__(self, report: Callable[[int, float], None]) -> None:
        super().__init__()
        self._report = report

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        if epoch % 25 == 0:
            self._report(epoch, float(evals_log["validation"]["logloss"][-1]))
        return False
