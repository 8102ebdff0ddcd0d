"""Batch training: temporal split, honest validation metrics, clear errors on bad data."""

from __future__ import annotations

import pytest

from models.market import FEATURES, MarketSimulator
from models.training import (
    TrainConfig,
    TrainingDataError,
    load_outcomes_file,
    sample_weights,
    train_batch_model,
)


def test_split_is_temporal_with_purge_gaps_and_metrics_are_recorded():
    frame = MarketSimulator(seed=6).frame(5000).sample(frac=1.0, random_state=0)  # shuffled
    config = TrainConfig(validation_fraction=0.2, holdout_fraction=0.1, purge_s=25)  # 1 row/s
    trained = train_batch_model(frame, FEATURES, config)
    split, meta = trained.split, trained.metadata
    assert meta["rows"] == {"train": 3450, "validation": 1000, "holdout": 500, "purged": 50}
    assert split.train["ts"].max() < split.validation["ts"].min()
    assert split.validation["ts"].max() < split.holdout["ts"].min()
    ordered = frame.sort_values("ts")["ts"].to_numpy()
    gap = (ordered > split.train["ts"].max()) & (ordered < split.validation["ts"].min())
    assert gap.sum() == 25
    assert meta["window"]["last_ts"] == int(frame["ts"].max())
    assert 0.6 < meta["validation_metrics"]["accuracy"] < 0.85
    assert set(meta["reference"]) == set(FEATURES)
    assert len(meta["reference"]["ret_1"]["quantiles"]) == 11
    assert len(meta["data_fingerprint"]) == 64


def test_the_purge_is_a_time_not_a_number_of_rows():
    frame = MarketSimulator(seed=6).frame(4000)
    # a burst: the 1,000 rows before the validation part all close within one second
    ts = frame["ts"].to_numpy().copy()
    ts[1800:2800] = ts[2799]
    frame["ts"] = ts
    config = TrainConfig(validation_fraction=0.2, holdout_fraction=0.1, purge_s=5)
    split = train_batch_model(frame, FEATURES, config).split
    gap_ms = split.validation["ts"].min() - split.train["ts"].max()
    assert gap_ms > 5_000  # nothing closing within 5 s of the validation start is trained on
    assert split.validation["ts"].min() - 5_000 > split.train["ts"].max()
    # the same timestamps are never on both sides of a boundary
    assert not set(split.train["ts"]) & set(split.validation["ts"])
    assert not set(split.validation["ts"]) & set(split.holdout["ts"])


def test_fingerprint_depends_on_the_data_not_on_row_order_given():
    frame = MarketSimulator(seed=6).frame(2000)
    shuffled = frame.sample(frac=1.0, random_state=1)
    a = train_batch_model(frame, FEATURES).metadata["data_fingerprint"]
    b = train_batch_model(shuffled, FEATURES).metadata["data_fingerprint"]
    c = train_batch_model(frame.assign(label=1 - frame["label"]), FEATURES).metadata[
        "data_fingerprint"
    ]
    assert a == b != c


def test_class_balance_and_rr_weights_are_options():
    frame = MarketSimulator(seed=6).frame(3000)
    config = TrainConfig(balance_classes=True, weight_by_rr=True, max_sample_weight=2.0)
    weights = sample_weights(frame, config)
    assert weights is not None and weights.max() <= 2.0 and weights.min() > 0
    assert sample_weights(frame, TrainConfig()) is None
    trained = train_batch_model(frame, FEATURES, config)
    assert trained.metadata["hyperparameters"]["balance_classes"] is True


def test_bad_training_data_is_refused_with_a_reason(tmp_path):
    frame = MarketSimulator(seed=6).frame(500)
    with pytest.raises(TrainingDataError, match="lacks columns"):
        train_batch_model(frame.drop(columns=["ret_5"]), FEATURES)
    with pytest.raises(TrainingDataError, match="0 or 1"):
        train_batch_model(frame.assign(label=2), FEATURES)
    with pytest.raises(TrainingDataError, match="at least"):
        train_batch_model(frame.head(10), FEATURES)
    with pytest.raises(TrainingDataError, match="does not exist"):
        load_outcomes_file(tmp_path / "nope.csv")
    with pytest.raises(TrainingDataError, match=r"\.csv or \.parquet"):
        load_outcomes_file(__file__)


def test_csv_and_parquet_read_back_identically(tmp_path):
    frame = MarketSimulator(seed=6).frame(300)
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    csv, parquet = (
        load_outcomes_file(tmp_path / "t.csv"),
        load_outcomes_file(tmp_path / "t.parquet"),
    )
    assert list(csv.columns) == list(parquet.columns) == list(frame.columns)
    assert (csv["label"] == parquet["label"]).all()
