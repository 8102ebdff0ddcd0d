"""Training the batch model (any registered family) on a window of closed trades, in time order.

The window is split by time into train | purge | validation | purge | holdout (never shuffled
across time; the purge gaps, in time, keep trades that overlap in time out of two parts; see
:mod:`models.walk_forward`). Early stopping watches the validation part; the holdout part is
left untouched for the champion/challenger gate (:mod:`models.gate`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from models.explanations import explanation
from models.families import FitConfig, FitData, FittedModel, ModelFamily, Progress, family
from models.store import ModelStore
from models.walk_forward import Scheme, SplitError, time_split

log = logging.getLogger(__name__)


class TrainingDataError(ValueError):
    """The training data cannot be used (missing columns, bad labels, too few rows)."""


@dataclass(frozen=True)
class TrainConfig:
    """The model family and its hyper-parameters, the temporal split and the sample weighting."""

    family: str = "xgboost"
    #: The family's own parameters (its library's names); they override the ones below.
    params: Mapping[str, Any] = field(default_factory=dict)
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
    #: Rows closing this long before a validation, holdout or test period are not trained on.
    purge_s: float = 60.0
    #: Rows closing this long after a test period are not trained on (``purged_kfold`` only).
    embargo_s: float = 0.0
    #: Cross-validation folds recorded in the metadata by
    #: :func:`models.candidate.train_candidate` (0 = none).
    cv_folds: int = 0
    cv_scheme: Scheme = "walk_forward"
    balance_classes: bool = False  # scale_pos_weight; off: it trades calibration for recall
    weight_by_rr: bool = False
    max_sample_weight: float = 5.0
    threads: int = 0  # 0 = all cores
    seed: int = 0
    min_rows: int = 100

    @property
    def purge_ms(self) -> float:
        """The purge in milliseconds (message timestamps are epoch ms)."""
        return self.purge_s * 1000.0

    @property
    def embargo_ms(self) -> float:
        """The embargo in milliseconds."""
        return self.embargo_s * 1000.0

    def fit_config(self, rounds: int | None = None) -> FitConfig:
        """What the family is fitted with (``rounds``: a fixed number instead of the most)."""
        return FitConfig(
            rounds=self.num_boost_round if rounds is None else rounds,
            early_stopping_rounds=self.early_stopping_rounds,
            learning_rate=self.eta,
            max_depth=self.max_depth,
            subsample=self.subsample,
            colsample=self.colsample_bytree,
            min_child_weight=self.min_child_weight,
            max_bin=self.max_bin,
            balance_classes=self.balance_classes,
            threads=self.threads,
            seed=self.seed,
            params=dict(self.params),
        )


@dataclass(frozen=True)
class TemporalSplit:
    """Train, validation and holdout parts of a window, oldest to newest, purged in between."""

    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame


@dataclass(frozen=True)
class TrainedModel:
    """A trained model, its family, the window (validated, oldest first) and the split it was
    trained on, the configuration it was trained with (tuned parameters included), and its
    store metadata."""

    model: FittedModel
    family: ModelFamily
    window: pd.DataFrame
    split: TemporalSplit
    metadata: dict[str, Any]
    config: TrainConfig = TrainConfig()

    def model_bytes(self) -> bytes:
        """The model in its library's native format."""
        return self.model.to_bytes()

    def save_to(self, store: ModelStore, metadata: dict[str, Any] | None = None) -> str:
        """Store the model as a new version, in its family's file and format, with
        ``metadata`` (default: the training metadata); returns the version."""
        return store.save(
            self.model_bytes(),
            self.metadata if metadata is None else metadata,
            self.family.model_file,
            self.family.model_format,
        )


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


def temporal_split(frame: pd.DataFrame, config: TrainConfig, holdout: bool = True) -> TemporalSplit:
    """Split a time-sorted window into train | purge | validation | purge | holdout (purges in
    time, :func:`models.walk_forward.time_split`); ``holdout=False``: no holdout part."""
    try:
        parts = time_split(
            frame["ts"].to_numpy(),
            config.validation_fraction,
            config.holdout_fraction if holdout else 0.0,
            config.purge_ms,
            min_train_rows=max(10, config.min_rows // 2),
        )
    except SplitError as exc:
        raise TrainingDataError(str(exc)) from None
    return TemporalSplit(
        train=frame.iloc[parts.train],
        validation=frame.iloc[parts.validation],
        holdout=frame.iloc[parts.holdout],
    )


def fit_data(frame: pd.DataFrame, features: Sequence[str], config: TrainConfig) -> FitData:
    """A table's rows as the families' input (weights when ``weight_by_rr``)."""
    return FitData(
        matrix=frame[list(features)].to_numpy(np.float64),
        labels=frame["label"].to_numpy(np.float64),
        weights=sample_weights(frame, config),
    )


def train_batch_model(
    frame: pd.DataFrame,
    features: Sequence[str],
    config: TrainConfig = TrainConfig(),
    source: str = "dataframe",
    progress: Progress | None = None,
    start: FittedModel | None = None,
) -> TrainedModel:
    """Train on the oldest part of the window, early-stop on the next, leave the newest out.

    ``progress(round, validation_logloss)`` is called every 25 boosting rounds; ``start``: a
    model of the family to continue (a warm start, :mod:`models.warm_start`).
    """
    chosen = family(config.family)
    chosen.module()  # a missing extra fails here, before the window is split
    data = validated_window(frame, features, config)
    split = temporal_split(data, config)
    model = fit_model(chosen, split, features, config, progress, start)
    columns = list(features)
    p_validation = predict_frame(model, split.validation, columns)
    metadata: dict[str, Any] = {
        "family": chosen.name,
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
        "hyperparameters": {**asdict(config), "best_iteration": model.rounds - 1},
        "model": model.describe(),
        "validation_metrics": classification_metrics(
            split.validation["label"].to_numpy(), p_validation
        ),
        "reference": feature_reference(split.train, features),
        "label_rate": float(split.train["label"].mean()),
        "prediction_reference": prediction_reference(p_validation),
    }
    metadata["explanation"] = explanation(
        model, split.validation[columns].to_numpy(np.float64), columns
    )
    return TrainedModel(
        model=model, family=chosen, window=data, split=split, metadata=metadata, config=config
    )


def fit_model(
    chosen: ModelFamily,
    split: TemporalSplit,
    features: Sequence[str],
    config: TrainConfig,
    progress: Progress | None = None,
    start: FittedModel | None = None,
) -> FittedModel:
    """Fit on ``split.train`` with early stopping on ``split.validation``; best round only
    (``start``: continue that model's rounds)."""
    train = fit_data(split.train, features, config)
    valid = fit_data(split.validation, features, config)
    if start is not None:
        return chosen.continue_fit(start, train, valid, config.fit_config(), progress)
    return chosen.fit(train, valid, config.fit_config(), progress)


def sample_weights(frame: pd.DataFrame, config: TrainConfig) -> np.ndarray | None:
    """|realized_rr| per row (capped; 1 where missing) when enabled, else no weights."""
    if not config.weight_by_rr or "realized_rr" not in frame.columns:
        return None
    rr = pd.to_numeric(frame["realized_rr"], errors="coerce").abs().fillna(1.0).to_numpy()
    return np.minimum(rr, config.max_sample_weight)


def predict_frame(model: FittedModel, frame: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """Win probabilities for the rows of a table."""
    return model.predict_proba(frame[list(features)].to_numpy(np.float64))


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
