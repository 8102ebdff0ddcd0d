"""Warm start: a retrain continues the champion's boosting only when that can mean something."""

from __future__ import annotations

import numpy as np
import pytest

from models.adapters.directory_blobs import DirectoryBlobStore
from models.batch import BatchModel, load_batch_model, training_window
from models.candidate import train_candidate
from models.market import FEATURES, MarketSimulator
from models.store import ModelStore
from models.training import TrainConfig, train_batch_model
from models.warm_start import plan_warm_start

CONFIG = TrainConfig(threads=1, purge_s=30)


@pytest.fixture(scope="module")
def market():
    frame = MarketSimulator(seed=21).frame(9000)
    return frame.iloc[:6000].reset_index(drop=True), frame.iloc[3000:].reset_index(drop=True)


def _champion(trained, features=FEATURES) -> BatchModel:
    return BatchModel(
        "v1", tuple(features), trained.model, window=training_window(trained.metadata)
    )


def test_a_retrain_on_an_overlapping_window_continues_the_champion(tmp_path, market):
    old, new = market
    first = train_batch_model(old, FEATURES, CONFIG)
    trained = train_candidate(new, FEATURES, CONFIG, warm_start=True, champion=_champion(first))
    record = trained.metadata["warm_start"]
    assert record["used"] is True and record["from_version"] == "v1"
    assert record["initial_rounds"] == first.model.rounds < trained.model.rounds == record["rounds"]
    assert record["overlap"] == pytest.approx(3000 / 6000, abs=0.01)
    # the champion's trees are kept as they were: the first rounds predict exactly like it
    rows = new[list(FEATURES)].to_numpy(np.float64)[:500]
    kept = trained.model.booster[: first.model.rounds]
    assert np.array_equal(kept.inplace_predict(rows), first.model.booster.inplace_predict(rows))
    # and the continued model is a normal version: stored, reloaded, scoring identically
    store = ModelStore(DirectoryBlobStore(tmp_path))
    version = trained.save_to(store)
    reloaded = load_batch_model(store, version, FEATURES)
    assert reloaded.window == (int(new["ts"].iloc[0]), int(new["ts"].iloc[-1]))  # for the next
    assert np.array_equal(reloaded.predict(rows), trained.model.predict_proba(rows))


def test_a_warm_start_is_refused_with_a_reason_when_it_means_nothing(market):
    old, new = market
    first = train_batch_model(old.iloc[:2500], FEATURES, CONFIG)
    ts = new["ts"].to_numpy()
    assert plan_warm_start(None, "xgboost", FEATURES, ts).record["reason"] == "no champion"
    apart = plan_warm_start(_champion(first), "xgboost", FEATURES, ts)
    assert apart.start is None and apart.record["reason"] == "the windows do not overlap"
    other = plan_warm_start(_champion(first, FEATURES[:-1]), "xgboost", FEATURES, ts)
    assert other.record["reason"] == "the champion was trained on other features"
    family = plan_warm_start(_champion(first), "lightgbm", FEATURES, ts)
    assert family.record["reason"] == "the champion is xgboost, the retrain lightgbm"
    logistic = train_batch_model(old, FEATURES, TrainConfig("logistic", purge_s=30))
    linear = plan_warm_start(_champion(logistic), "logistic", FEATURES, ts)
    assert linear.record["reason"] == "logistic cannot continue training"
    # from scratch, the record says so and the model has no champion trees in it
    trained = train_candidate(new, FEATURES, CONFIG, warm_start=True, champion=_champion(first))
    assert trained.metadata["warm_start"]["used"] is False
    assert "warm_start" not in train_candidate(new, FEATURES, CONFIG).metadata
