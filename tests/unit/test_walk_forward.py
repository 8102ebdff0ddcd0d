"""Walk-forward validation: purge and embargo in time, and no leak from the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from models.candidate import train_candidate
from models.cross_validation import cross_validate
from models.families import family
from models.training import TrainConfig, classification_metrics, fit_data
from models.walk_forward import SplitError, folds


def _irregular_ts(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gaps = rng.choice([0, 1, 5, 1000, 60_000], size=n, p=[0.2, 0.3, 0.3, 0.15, 0.05])
    return np.cumsum(gaps).astype(np.int64)


@pytest.mark.parametrize("seed", range(5))
def test_walk_forward_folds_train_only_on_the_past_purged_in_time(seed):
    ts = _irregular_ts(seed, 3000)
    purge = 2_000.0
    for fold in folds(ts, 4, purge):
        start = ts[fold.test[0]]
        assert ts[fold.train].max() < start - purge
        # everything older than the purge is used, nothing newer
        assert len(fold.train) == int((ts < start - purge).sum())
        # a timestamp is never on both sides
        assert not set(ts[fold.test]) & set(ts[fold.train])


@pytest.mark.parametrize("seed", range(5))
def test_purged_kfold_drops_the_purge_before_and_the_embargo_after(seed):
    ts = _irregular_ts(seed, 3000)
    purge, embargo = 2_000.0, 30_000.0
    result = folds(ts, 4, purge, embargo, scheme="purged_kfold")
    assert len(result) >= 3
    for fold in result:
        first, last = ts[fold.test[0]], ts[fold.test[-1]]
        trained = ts[fold.train]
        before, after = trained[trained < first], trained[trained > last]
        assert len(before) + len(after) == len(trained)
        assert (before < first - purge).all()
        assert (after > last + embargo).all()


def test_too_few_rows_for_the_folds_is_a_clear_error():
    with pytest.raises(SplitError, match="too few"):
        folds(np.arange(8), 5, 0.0)


def _planted_window() -> pd.DataFrame:
    """8,000 trades a second apart: labels are coin flips, except in the newest quarter where
    the label is the sign of x0 (a signal that only exists in the future)."""
    rng = np.random.default_rng(11)
    n = 8000
    x = rng.normal(size=(n, 4))
    label = (rng.random(n) < 0.5).astype(float)
    label[6000:] = (x[6000:, 0] > 0).astype(float)
    frame = pd.DataFrame(x, columns=["x0", "x1", "x2", "x3"])
    frame.insert(0, "label", label)
    frame.insert(0, "ts", 1_767_225_600_000 + np.arange(n) * 1000)
    return frame


def test_a_signal_planted_in_the_future_gives_walk_forward_no_gain():
    frame = _planted_window()
    config = TrainConfig(threads=1, purge_s=30)
    result = cross_validate(frame, ["x0", "x1", "x2", "x3"], config, 3)
    assert [f["test_from_ts"] for f in result.folds][-1] == frame["ts"].iloc[6000]
    for fold in result.folds:  # no fold, least of all the planted one, beats the base rate
        assert fold["metrics"]["log_loss"] > fold["metrics"]["base_log_loss"] - 0.01
    # the same rows split at random (the leak walk-forward avoids) find the planted signal
    train, test = train_test_split(frame, test_size=0.25, random_state=0)
    train, valid = train_test_split(train, test_size=0.2, random_state=0)
    model = family("xgboost").fit(
        fit_data(train, ["x0", "x1", "x2", "x3"], config),
        fit_data(valid, ["x0", "x1", "x2", "x3"], config),
        config.fit_config(),
    )
    planted = test[test["ts"] >= frame["ts"].iloc[6000]]
    leaky = classification_metrics(
        planted["label"].to_numpy(),
        model.predict_proba(planted[["x0", "x1", "x2", "x3"]].to_numpy()),
    )
    assert leaky["log_loss"] < np.log(2) - 0.1  # measured 0.52


def test_cross_validation_is_recorded_in_the_metadata():
    from models.market import FEATURES, MarketSimulator

    config = TrainConfig(threads=1, cv_folds=3, purge_s=30)
    frame = MarketSimulator(seed=2).frame(4000)
    meta = train_candidate(frame, FEATURES, config).metadata
    cv = meta["cross_validation"]
    assert cv["scheme"] == "walk_forward" and len(cv["folds"]) == 3
    holdout_from = meta["window"]["last_ts"] - meta["rows"]["holdout"] * 1000
    assert all(f["test_to_ts"] < holdout_from for f in cv["folds"])  # the holdout is untouched
    assert cv["summary"]["log_loss"]["mean"] < cv["summary"]["base_log_loss"]["mean"]
