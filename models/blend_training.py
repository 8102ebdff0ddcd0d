"""Fitting a new batch version's blend at retrain time, on walk-forward out-of-fold predictions.

Both parts' scores must be out of sample, as they are live:

* **batch**: the training part of the window is cut by time into ``folds + 1`` blocks; for each
  block after the first, a model of the new version's family, hyper-parameters and number of
  rounds is trained on every older row (minus those closing ``purge_s`` before the block) and
  scores the block;
* **online**: the online learner runs prequentially (predict, then learn) over the whole window
  in time order, one learner per model key, as a worker would have; rows its key had learned
  fewer than ``min_updates`` outcomes for are left out (live, those are ``batch_only``).

On those rows the linear weight is fitted exactly as the ``optimized`` mode fits a key
(:func:`~models.blend_weights.weight_of`, shrunk toward the configured weight) and a
logistic meta-learner on the ``stacked`` mode's inputs (scikit-learn). The new model's holdout
rows, which neither fit saw, then score every part and blend for the version's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from models.blend_weights import WeightFitConfig, weight_of
from models.evaluation import log_loss
from models.families import family
from models.online import OnlineConfig, OnlineLearner
from models.stacking import StackConfig
from models.training import TrainConfig, TrainedModel, fit_data, predict_frame
from models.version_blend import StackStart, VersionBlend
from models.walk_forward import SplitError
from models.walk_forward import folds as walk_forward_folds

#: Fewer out-of-fold rows than this and no blend is fitted (the version keeps the configured).
MIN_ROWS = 200


@dataclass(frozen=True)
class BlendTrainConfig:
    """How a new version's blend is fitted: folds, the modes' own configs (the configured
    weight, the shrinkage, the meta-learner's inputs), and the online learner."""

    folds: int = 4
    weights: WeightFitConfig = field(default_factory=WeightFitConfig)
    stack: StackConfig = field(default_factory=StackConfig)
    min_updates: int = 50
    online: OnlineConfig = field(default_factory=OnlineConfig)

    def __post_init__(self) -> None:
        if self.folds < 1:
            raise ValueError(f"folds must be >= 1, got {self.folds}")


@dataclass(frozen=True)
class BlendTraining:
    """The fitted blend (None when there were too few rows) and the report for the metadata."""

    blend: VersionBlend | None
    report: dict[str, Any]

    def as_metadata(self) -> dict[str, Any]:
        """``metadata["blend"]``: the fitted blend's fields and how it was fitted."""
        fitted = {} if self.blend is None else self.blend.as_metadata()
        return {**fitted, **self.report}


def walk_forward_batch(
    train: pd.DataFrame,
    features: Sequence[str],
    config: TrainConfig,
    folds: int,
    rounds: int,
) -> np.ndarray:
    """Out-of-fold batch probabilities for the rows of ``train`` (oldest first): the
    walk-forward folds of :func:`models.walk_forward.folds`; NaN for the first block, which
    only trains, and for rows no fold could score."""
    columns = list(features)
    p = np.full(len(train), np.nan)
    chosen = family(config.family)
    fixed = config.fit_config(rounds=rounds)
    try:
        blocks = walk_forward_folds(train["ts"].to_numpy(), folds, config.purge_ms)
    except SplitError:
        return p
    for fold in blocks:
        past = train.iloc[fold.train]
        if past["label"].nunique() < 2:
            continue
        model = chosen.fit(fit_data(past, columns, config), None, fixed)
        p[fold.test] = predict_frame(model, train.iloc[fold.test], columns)
    return p


def prequential_online(
    window: pd.DataFrame, features: Sequence[str], keys: Sequence[str], config: OnlineConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The online learner's probability for each row before learning it, and how many updates
    that row's key had then (one learner per key, rows in window order)."""
    learners: dict[str, OnlineLearner] = {}
    p = np.empty(len(window))
    updates = np.empty(len(window), dtype=np.int64)
    rows = window[list(features)].to_dict("records")
    labels = window["label"].to_numpy()
    weights = (
        window["realized_rr"].to_numpy(np.float64)
        if config.weight_by_rr and "realized_rr" in window.columns
        else None
    )
    for i, (x, key) in enumerate(zip(rows, keys, strict=True)):
        learner = learners.get(key)
        if learner is None:
            learner = learners[key] = OnlineLearner(config)
        p[i] = learner.predict_proba(x)
        updates[i] = learner.updates
        rr = None if weights is None or not np.isfinite(weights[i]) else float(weights[i])
        learner.learn(x, bool(labels[i] == 1), config.sample_weight(rr))
    return p, updates


def fit_stack(
    p_batch: np.ndarray, p_online: np.ndarray, labels: np.ndarray, config: StackConfig
) -> StackStart:
    """A logistic meta-learner on the ``stacked`` mode's inputs of the two parts."""
    meta = config.fresh()
    rows = [meta.inputs(float(b), float(o)) for b, o in zip(p_batch, p_online, strict=True)]
    names = sorted(rows[0])
    matrix = np.array([[row[name] for name in names] for row in rows])
    model = LogisticRegression(C=1.0, max_iter=1000).fit(matrix, labels.astype(int))
    weights = {name: float(w) for name, w in zip(names, model.coef_[0], strict=True)}
    return StackStart(config.inputs, weights, float(model.intercept_[0]))


def stacked_probabilities(
    stack: StackStart, config: StackConfig, p_batch: np.ndarray, p_online: np.ndarray
) -> np.ndarray:
    """The fitted meta-learner's win probability per pair of part scores."""
    meta = config.fresh()
    meta.start_from(stack)
    return np.array(
        [meta.score(float(b), float(o)) for b, o in zip(p_batch, p_online, strict=True)]
    )


def fit_version_blend(
    trained: TrainedModel,
    features: Sequence[str],
    keys: Sequence[str],
    config: BlendTrainConfig,
) -> BlendTraining:
    """Fit the blend the new version starts with, and score it on the version's holdout rows.

    ``keys``: the model key of each row of ``trained.window`` (its online learner); the
    out-of-fold batch fits use the version's own configuration (``trained.config``).
    """
    window, split = trained.window, trained.split
    p_online, updates = prequential_online(window, features, keys, config.online)
    rounds = trained.model.rounds
    p_oof = walk_forward_batch(split.train, features, trained.config, config.folds, rounds)
    n_train = len(split.train)
    usable = np.isfinite(p_oof) & (updates[:n_train] >= config.min_updates)
    labels = split.train["label"].to_numpy(np.float64)
    report: dict[str, Any] = {
        "method": "walk-forward out-of-fold",
        "folds": config.folds,
        "rounds": rounds,
    }
    rows = int(usable.sum())
    if rows < MIN_ROWS or len(np.unique(labels[usable])) < 2:
        report["reason"] = (
            f"not fitted: {rows} out-of-fold rows scored by both parts (need {MIN_ROWS}, "
            "both classes)"
        )
        return BlendTraining(None, report)
    pb, po, y = p_oof[usable], p_online[:n_train][usable], labels[usable]
    blend = VersionBlend(
        w_batch=weight_of(pb, po, y, config.weights),
        stack=fit_stack(pb, po, y, config.stack),
        rows=rows,
    )
    report["out_of_fold"] = _scores(blend, config, pb, po, y)
    holdout = split.holdout
    if not holdout.empty:
        at = holdout.index.to_numpy()
        scored = updates[at] >= config.min_updates
        if scored.any():
            hb = predict_frame(trained.model, holdout, features)[scored]
            hy = holdout["label"].to_numpy(np.float64)[scored]
            report["holdout"] = _scores(blend, config, hb, p_online[at][scored], hy)
    return BlendTraining(blend, report)


def _scores(
    blend: VersionBlend, config: BlendTrainConfig, pb: np.ndarray, po: np.ndarray, y: np.ndarray
) -> dict[str, Any]:
    """Rows, and log loss / accuracy of each part and each way of blending them."""
    assert blend.stack is not None
    w_configured = config.weights.w_batch
    candidates = {
        "batch": pb,
        "online": po,
        "configured": w_configured * pb + (1.0 - w_configured) * po,
        "fitted": blend.w_batch * pb + blend.w_online * po,
        "stacked": stacked_probabilities(blend.stack, config.stack, pb, po),
    }
    return {
        "rows": len(y),
        **{
            name: {
                "log_loss": round(log_loss(p, y, 1e-6), 6),
                "accuracy": round(float(((p > 0.5) == (y == 1.0)).mean()), 6),
            }
            for name, p in candidates.items()
        },
    }
