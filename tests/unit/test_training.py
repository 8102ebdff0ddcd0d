"""Batch training: temporal split, honest validation metrics, clear errors on bad data."""

from __future__ import annotations

import pytest

from models.market import FEATURES, MarketSimulator
from models.training import TrainConfig, TrainingDataError, load_outcomes_file, train_batch_model


def test_validation_is_the_newest_rows_and_metrics_are_recorded():
    frame = MarketSimulator(seed=6).frame(5000).sample(frac=1.0, random_state=0)  # shuffled
    trained = train_batch_model(frame, FEATURES, TrainConfig(validation_fraction=0.2))
    meta = trained.metadata
    assert meta["rows"] == {"train": 4000, "validation": 1000}
    assert meta["window"]["last_ts"] == int(frame["ts"].max())
    assert 0.6 < meta["validation_metrics"]["accuracy"] < 0.85
    assert set(meta["reference"]) == set(FEATURES)
    assert len(meta["reference"]["ret_1"]["quantiles"]) == 11


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
