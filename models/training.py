"""Training the batch XGBoost model on a window of closed trades, in time order.

The window is split by time into train | purge | validation | purge | holdout (never shuffled
across time; the purge gaps keep trades that overlap in time out of two parts). Early stopping
watches the validation part; the holdout part is left untouched for the champion/challenger
gate (:mod:`models.gate`).
"""

from __future__ import annotations

import hashlib
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
    """XGBoost hyper-parameters, the temporal split and the sample weighting."""

    num_boost_round: int = 400
    early_stopping_rounds: int = 30
    max_depth: int = 4
    eta: float = 0.08
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 5.0
    max_bin: int = 128
    validation_fraction: float = 0.15
    holdout_fraction: float = 0.15
    purge_rows: int = 50
    balance_classes: bool = False  # scale_pos_weight; off: it trades calibration for recall
    weight_by_rr: bool = False
    max_sample_weight: float = 5.0
    threads: int = 0  # 0 = all cores
    seed: int = 0
    min_rows: int = 100


@dataclass(frozen=True)
class TemporalSplit:
    """Train, validation and holdout parts of a window, oldest to newest, purged in between."""

    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame


@dataclass(frozen=True)
class TrainedModel:
    """A trained booster, the window (validated, oldest first) and the split it was trained
    on, and its store metadata."""

    booster: xgb.Booster
    window: pd.DataFrame
    split: TemporalSplit
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


def temporal_split(frame: pd.DataFrame, config: TrainConfig) -> TemporalSplit:
    """Split a time-sorted window into train | purge | validation | purge | holdout."""
    n = len(frame)
    n_holdout = int(n * config.holdout_fraction)
    n_valid = max(1, int(n * config.validation_fraction))
    gaps = config.purge_rows * (2 if n_holdout else 1)
    n_train = n - n_holdout - n_valid - gaps
    if n_train < max(10, config.min_rows // 2):
        raise TrainingDataError(
            f"{n} rows are too few for validation {n_valid}, holdout {n_holdout} "
            f"and purge gaps of {config.purge_rows}"
        )
    valid_start = n_train + config.purge_rows
    holdout_start = valid_start + n_valid + (config.purge_rows if n_holdout else 0)
    return TemporalSplit(
        train=frame.iloc[:n_train],
        validation=frame.iloc[valid_start : valid_start + n_valid],
        holdout=frame.iloc[holdout_start:] if n_holdout else frame.iloc[0:0],
    )


def train_batch_model(
    frame: pd.DataFrame,
    features: Sequence[str],
    config: TrainConfig = TrainConfig(),
    source: str = "dataframe",
    progress: Callable[[int, float], None] | None = None,
) -> TrainedModel:
    """Train on the oldest part of the window, early-stop on the next, leave the newest out.

    ``progress(round, validation_logloss)`` is called every 25 boosting rounds.
    """
    data = validated_window(frame, features, config)
    split = temporal_split(data, config)
    booster = fit_booster(split, features, config, progress)
    columns = list(features)
    metadata: dict[str, Any] = {
        "features": columns,
        "rows": {
            "train": len(split.train),
            "validation": len(split.validation),
            "holdout": len(split.holdout),
            "purged": len(data) - len(split.train) - len(split.validation) - len(split.holdout),
        },
        "window": {
            "first_ts": _int_or_none(data["ts"].iloc[0]),
            "last_ts": _int_or_none(data["ts"].iloc[-1]),
            "rows": len(data),
        },
        "source": source,
        "data_fingerprint": data_fingerprint(data, features),
        "hyperparameters": {**asdict(config), "best_iteration": int(booster.best_iteration)},
        "validation_metrics": classification_metrics(
            split.validation["label"].to_numpy(), predict_frame(booster, split.validation, columns)
        ),
        "reference": feature_reference(split.train, features),
        "label_rate": float(split.train["label"].mean()),
        "prediction_reference": prediction_reference(
            predict_frame(booster, split.validation, columns)
        ),
    }
    return TrainedModel(booster=booster, window=data, split=split, metadata=metadata)


def fit_booster(
    split: TemporalSplit,
    features: Sequence[str],
    config: TrainConfig,
    progress: Callable[[int, float], None] | None = None,
) -> xgb.Booster:
    """Boost on ``split.train`` with early stopping on ``split.validation``; best iteration only."""
    columns = list(features)
    train, valid = split.train, split.validation
    dtrain = xgb.QuantileDMatrix(
        train[columns].to_numpy(np.float64),
        label=train["label"].to_numpy(),
        weight=sample_weights(train, config),
        max_bin=config.max_bin,
    )
    dvalid = xgb.QuantileDMatrix(
        valid[columns].to_numpy(np.float64),
        label=valid["label"].to_numpy(),
        ref=dtrain,
        max_bin=config.max_bin,
    )
    params = booster_params(train, config)
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=config.num_boost_round,
        evals=[(dvalid, "validation")],
        early_stopping_rounds=config.early_stopping_rounds,
        verbose_eval=False,
        callbacks=[_Progress(progress)] if progress else [],
    )
    best = booster[: booster.best_iteration + 1]
    best.best_iteration = booster.best_iteration
    return best


def booster_params(train: pd.DataFrame, config: TrainConfig) -> dict[str, Any]:
    """XGBoost's parameters for training on ``train`` with ``config``."""
    positives = float(train["label"].sum())
    return {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_bin": config.max_bin,
        "max_depth": config.max_depth,
        "eta": config.eta,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "min_child_weight": config.min_child_weight,
        "scale_pos_weight": (len(train) - positives) / positives if config.balance_classes else 1.0,
        "nthread": config.threads,
        "seed": config.seed,
    }


def sample_weights(frame: pd.DataFrame, config: TrainConfig) -> np.ndarray | None:
    """|realized_rr| per row (capped; 1 where missing) when enabled, else no weights."""
    if not config.weight_by_rr or "realized_rr" not in frame.columns:
        return None
    rr = pd.to_numeric(frame["realized_rr"], errors="coerce").abs().fillna(1.0).to_numpy()
    return np.minimum(rr, config.max_sample_weight)


def predict_frame(booster: xgb.Booster, frame: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """Win probabilities for the rows of a table."""
    if frame.empty:
        return np.empty(0)
    return np.asarray(booster.inplace_predict(frame[list(features)].to_numpy(np.float64)))


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


#: A column with at most this many distinct values is treated as discrete (no KS test).
DISCRETE_MAX_VALUES = 20


def distribution_reference(values: np.ndarray) -> dict[str, Any]:
    """Deciles, bins cut at the distinct inner deciles with the exact share of rows in each
    (so PSI is right for discrete columns too), mean and sd of one column."""
    values = np.asarray(values, dtype=np.float64)
    quantiles = np.quantile(values, np.linspace(0.0, 1.0, 11))
    edges = sorted(set(quantiles[1:-1].tolist()))
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return {
        "quantiles": [float(q) for q in quantiles],
        "bins": {"edges": edges, "shares": (counts / counts.sum()).tolist()},
        "discrete": bool(len(np.unique(values)) <= DISCRETE_MAX_VALUES),
        "mean": float(values.mean()),
        "std": float(values.std()),
    }


def feature_reference(frame: pd.DataFrame, features: Sequence[str]) -> dict[str, Any]:
    """The reference distribution of each feature in the training rows (for drift checks)."""
    return {name: distribution_reference(frame[name].to_numpy()) for name in features}


def prediction_reference(p_win: np.ndarray) -> dict[str, Any]:
    """The reference distribution of a model's own predictions on validation rows."""
    return distribution_reference(p_win)


def data_fingerprint(frame: pd.DataFrame, features: Sequence[str]) -> str:
    """SHA-256 of the window's rows (ts, label, realized R/R, features), order included."""
    columns = [c for c in ("ts", "label", "realized_rr", *features) if c in frame.columns]
    hashed = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def validated_window(
    frame: pd.DataFrame, features: Sequence[str], config: TrainConfig
) -> pd.DataFrame:
    """The window sorted by time, after checking columns, labels and values."""
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
