"""One retrain: train a challenger on a window and put it through the gate against the champion."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.batch import BatchModel
from models.blend_training import BlendTrainConfig, fit_version_blend
from models.candidate import train_candidate
from models.gate import GateConfig, GateDecision, decide
from models.training import TrainConfig, TrainedModel, TrainingDataError, predict_frame
from models.tuning import TrialCallback, TuningConfig


@dataclass(frozen=True)
class Challenge:
    """A trained challenger, the gate's verdict, and the metadata to store with it."""

    trained: TrainedModel
    decision: GateDecision
    metadata: dict[str, Any]


def realized_rr_of(frame: pd.DataFrame) -> np.ndarray | None:
    """The realised R/R column as floats, or None when it is absent or incomplete."""
    if "realized_rr" not in frame.columns:
        return None
    values = pd.to_numeric(frame["realized_rr"], errors="coerce").to_numpy(np.float64)
    return values if np.isfinite(values).all() else None


def challenge(
    frame: pd.DataFrame,
    features: Sequence[str],
    champion: BatchModel | None,
    train_config: TrainConfig,
    gate_config: GateConfig,
    source: str,
    reason: str,
    progress: Callable[[int, float], None] | None = None,
    blend: BlendTrainConfig | None = None,
    key_column: str | None = None,
    tuning: TuningConfig | None = None,
    on_trial: TrialCallback | None = None,
    warm_start: bool = False,
) -> Challenge:
    """Train on the window, then score challenger and champion on the same newest holdout rows.

    Without a champion the challenger is compared with the base-rate predictor (the training
    win rate for every row), so even the first model must show it learned something. With
    ``blend``, the blend the version starts with is fitted on out-of-fold predictions
    (:mod:`models.blend_training`; ``key_column`` names each row's model key, else one key).
    ``tuning`` and ``on_trial``: see :func:`models.candidate.train_candidate`; ``warm_start``:
    continue the champion when its window overlaps this one.
    """
    trained = train_candidate(
        frame, features, train_config, source, progress, tuning, on_trial, warm_start, champion
    )
    holdout = trained.split.holdout
    if holdout.empty:
        raise TrainingDataError("the gate needs holdout rows (holdout_fraction > 0)")
    labels = holdout["label"].to_numpy(np.float64)
    p_challenger = predict_frame(trained.model, holdout, features)
    if champion is not None:
        p_champion = champion.predict(holdout[list(champion.features)].to_numpy(np.float64))
    else:
        p_champion = np.full(len(holdout), float(trained.split.train["label"].mean()))
    decision = decide(
        labels,
        p_challenger,
        p_champion,
        realized_rr_of(holdout),
        gate_config,
        None if champion is None else champion.version,
    )
    metadata = {
        **trained.metadata,
        "parent_version": None if champion is None else champion.version,
        "reason": reason,
        "holdout_metrics": decision.challenger,
        "gate": decision.as_dict(),
    }
    if blend is not None:
        metadata["blend"] = fitted_blend(trained, features, blend, key_column)
    return Challenge(trained=trained, decision=decision, metadata=metadata)


def fitted_blend(
    trained: TrainedModel,
    features: Sequence[str],
    config: BlendTrainConfig,
    key_column: str | None,
) -> dict[str, Any]:
    """``metadata["blend"]`` of a new version: its fitted blend, or why there is none (a fit
    that cannot be made never fails the retrain: the version then starts from the configured
    blend)."""
    window = trained.window
    if key_column is not None and key_column in window.columns:
        keys = window[key_column].astype(str).tolist()
    else:
        keys = ["global"] * len(window)
    try:
        return fit_version_blend(trained, features, keys, config).as_metadata()
    except (ValueError, ArithmeticError) as exc:
        return {"reason": f"not fitted: {type(exc).__name__}: {exc}".splitlines()[0][:300]}
