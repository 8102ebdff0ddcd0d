"""A candidate batch model, as a retrain and ``streamlearn train`` make one.

In order: tune the family's parameters on walk-forward folds before the holdout (when tuning
is on, :mod:`models.tuning`), train on the window with early stopping (continuing the
champion's rounds when a warm start was planned, :mod:`models.warm_start`), and record
``cv_folds`` walk-forward folds (:mod:`models.cross_validation`). Each step's record lands in
the version's metadata: ``tuning``, ``warm_start``, ``cross_validation``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from models.batch import BatchModel
from models.cross_validation import cross_validate, development_part
from models.families import Progress
from models.training import (
    TrainConfig,
    TrainedModel,
    temporal_split,
    train_batch_model,
    validated_window,
)
from models.tuning import TrialCallback, TuningConfig, tune
from models.warm_start import plan_warm_start


def train_candidate(
    frame: pd.DataFrame,
    features: Sequence[str],
    config: TrainConfig,
    source: str = "dataframe",
    progress: Progress | None = None,
    tuning: TuningConfig | None = None,
    on_trial: TrialCallback | None = None,
    warm_start: bool = False,
    champion: BatchModel | None = None,
) -> TrainedModel:
    """Tune (optional), train, cross-validate (optional) a model of ``config.family``.

    ``warm_start``: continue ``champion`` when :func:`models.warm_start.plan_warm_start`
    allows; the plan is recorded either way.
    """
    tuning_summary = None
    if tuning is not None:
        # validated and sorted once: train_batch_model's own check of it is then a pass
        frame = validated_window(frame, features, config)
        holdout = temporal_split(frame, config).holdout
        development = development_part(frame, holdout, config.purge_ms)
        result = tune(development, features, config, tuning, on_trial)
        config, tuning_summary = result.config, result.summary
    plan = None
    if warm_start:
        plan = plan_warm_start(champion, config.family, features, frame["ts"].to_numpy())
    trained = train_batch_model(
        frame, features, config, source, progress, None if plan is None else plan.start
    )
    if tuning_summary is not None:
        trained.metadata["tuning"] = tuning_summary
    if plan is not None:
        trained.metadata["warm_start"] = {**plan.record, "rounds": trained.model.rounds}
    if config.cv_folds:
        development = development_part(trained.window, trained.split.holdout, config.purge_ms)
        trained.metadata["cross_validation"] = cross_validate(
            development, features, config, config.cv_folds, trained.family
        ).as_metadata(config)
    return trained
