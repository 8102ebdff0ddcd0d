"""Optuna tuning over walk-forward folds: seeded, pruned, budgeted, never on the holdout."""

from __future__ import annotations

import sys
import warnings

import pytest

from config.settings import DEFAULT_SEARCH_SPACES, load_settings
from models.candidate import train_candidate
from models.extras import MissingExtraError
from models.families import family_names
from models.market import FEATURES, MarketSimulator
from models.training import TrainConfig
from models.tuning import Dimension, TuningConfig, TuningError, dimensions, tune

#: Defaults made poor on purpose: a learning rate this small learns next to nothing in 40 rounds.
POOR = TrainConfig(threads=1, num_boost_round=40, params={"eta": 0.002}, purge_s=30)
ETA = [Dimension("eta", "float", 0.02, 0.4, log=True), Dimension("max_depth", "int", 2, 5)]


@pytest.fixture(scope="module")
def frame():
    return MarketSimulator(seed=5).frame(5000)


def test_tuning_beats_poor_defaults_and_the_model_is_trained_with_the_best_trial(frame):
    lines = []
    trained = train_candidate(
        frame,
        FEATURES,
        POOR,
        tuning=TuningConfig(ETA, trials=6, folds=2),
        on_trial=lambda *trial: lines.append(trial),
    )
    summary = trained.metadata["tuning"]
    assert summary["trials"]["total"] == 6 == len(summary["history"]) == len(lines)
    assert summary["adopted"] is True
    assert summary["best"]["cv_log_loss"] < summary["baseline"]["cv_log_loss"] - 0.01
    best = summary["best"]["params"]
    assert trained.config.params == best
    assert trained.metadata["hyperparameters"]["params"] == best
    assert trained.model.params["eta"] == best["eta"]  # the fitted booster used it
    assert summary["sampler"] == "TPESampler" and summary["pruner"] == "MedianPruner"
    assert set(summary["space"]) == {"eta", "max_depth"}
    # the study never saw the gate's holdout (nor the purge before it)
    holdout_rows = trained.split.holdout
    first_holdout = int(holdout_rows["ts"].iloc[0])
    assert summary["development"]["last_ts"] < first_holdout - POOR.purge_ms
    assert [n for n, *_ in lines] == list(range(6))


def test_the_same_seed_gives_the_same_study(frame):
    window = frame.iloc[:3000]
    first = tune(window, FEATURES, POOR, TuningConfig(ETA, trials=4, folds=2, seed=3))
    again = tune(window, FEATURES, POOR, TuningConfig(ETA, trials=4, folds=2, seed=3))
    other = tune(window, FEATURES, POOR, TuningConfig(ETA, trials=4, folds=2, seed=4))
    assert first.summary["history"] == again.summary["history"]
    assert first.summary["history"] != other.summary["history"]


def test_the_median_pruner_stops_trials_that_are_already_worse(frame):
    # half the space learns nothing: once five trials are in, those are stopped after a fold
    space = [Dimension("eta", "categorical", choices=(0.0005, 0.2))]
    result = tune(frame, FEATURES, POOR, TuningConfig(space, trials=14, folds=3, seed=1))
    trials = result.summary["trials"]
    assert trials.get("pruned", 0) >= 1
    assert result.summary["best"]["params"] == {"eta": 0.2}
    pruned = [t for t in result.summary["history"] if t["state"] == "pruned"]
    assert all(t["params"] == {"eta": 0.0005} for t in pruned)


def test_a_time_budget_ends_the_study(frame):
    result = tune(frame.iloc[:2000], FEATURES, POOR, TuningConfig(ETA, trials=None, time_s=0.5))
    summary = result.summary
    assert summary["budget"] == {"trials": None, "time_s": 0.5}
    assert summary["trials"]["total"] >= 1


def test_when_no_trial_beats_the_defaults_they_are_kept(frame):
    good = TrainConfig(threads=1, purge_s=30)
    awful = [Dimension("eta", "float", 0.0001, 0.0002)]  # every trial is worse than eta 0.08
    result = tune(frame.iloc[:3000], FEATURES, good, TuningConfig(awful, trials=3, folds=2))
    assert result.summary["adopted"] is False and "defaults" in result.summary["reason"]
    assert result.config == good


def test_a_missing_optuna_is_one_line_naming_the_extra(monkeypatch, frame):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtraError) as caught:
        tune(frame, FEATURES, POOR, TuningConfig(ETA, trials=1))
    assert str(caught.value) == "retrain.tuning needs optuna: pip install 'streamlearn[tuning]'"


def test_malformed_spaces_and_budgets_are_refused():
    with pytest.raises(TuningError, match="low < high"):
        Dimension("eta", "float", 0.3, 0.1)
    with pytest.raises(TuningError, match="log scale"):
        Dimension("eta", "float", 0.0, 0.1, log=True)
    with pytest.raises(TuningError, match="budget"):
        TuningConfig(ETA, trials=None, time_s=None)
    with pytest.raises(TuningError, match="search space"):
        TuningConfig([], trials=3)


@pytest.mark.parametrize("name", family_names())
def test_every_default_search_space_is_understood_by_its_family(name):
    space = dimensions(DEFAULT_SEARCH_SPACES[name])
    frame = MarketSimulator(seed=9).frame(1500)
    config = TrainConfig(name, threads=1, num_boost_round=30, purge_s=30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tune(frame, FEATURES, config, TuningConfig(space, trials=2, folds=2))
    assert result.summary["trials"]["total"] == 2
    # every parameter name is the library's own: none failed (CatBoost refuses unknown
    # names), none ignored (XGBoost warns "are not used")
    assert result.summary["trials"].get("fail", 0) == 0
    assert not [w for w in caught if "not used" in str(w.message)]
    settings = load_settings(environ={})
    assert set(settings.retrain.search_spaces[name]) == {d.name for d in space}
