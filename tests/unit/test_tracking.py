"""MLflow tracking of a retrain: one run with its parameters, metrics, tags and artifact."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from models.adapters.mlflow_tracker import MlflowTracker
from models.extras import MissingExtraError
from models.gate import GateConfig
from models.market import FEATURES, MarketSimulator
from models.retrain import challenge
from models.tracking import run_metrics, run_params
from models.training import TrainConfig
from models.tuning import Dimension, TuningConfig


@pytest.fixture(scope="module")
def retrain():
    frame = MarketSimulator(seed=8).frame(5000)
    config = TrainConfig(threads=1, purge_s=30, cv_folds=2, params={"max_bin": 64})
    tuning = TuningConfig([Dimension("max_depth", "int", 2, 5)], trials=3, folds=2)
    result = challenge(
        frame, FEATURES, None, config, GateConfig(n_resamples=200), "test", "why", tuning=tuning
    )
    return result


def test_a_retrain_is_one_mlflow_run_with_its_parameters_metrics_and_model(tmp_path, retrain):
    metadata = retrain.metadata
    tracker = MlflowTracker(f"sqlite:///{tmp_path}/mlflow.db", "streamlearn-test")
    run = tracker.record(metadata, retrain.trained.model_bytes(), "model.ubj")
    tracker.link(run.run_id, "v-123", "activated")
    client = tracker._client
    stored = client.get_run(run.run_id)
    params, tags = stored.data.params, stored.data.tags
    assert stored.info.status == "FINISHED"
    assert params["family"] == "xgboost" and params["train.eta"] == "0.08"
    assert params["params.max_bin"] == "64"  # the family's own parameters, tuned ones too
    for name, value in metadata["hyperparameters"]["params"].items():
        assert params[f"params.{name}"] == str(value)
    assert params["window.rows"] == "5000" and params["tuning.budget_trials"] == "3"
    assert params["features"] == ",".join(FEATURES)
    metrics = stored.data.metrics
    gate = metadata["gate"]
    assert metrics["holdout.log_loss"] == pytest.approx(gate["challenger"]["log_loss"])
    assert metrics["champion_holdout.log_loss"] == pytest.approx(gate["champion"]["log_loss"])
    assert metrics["gate.p_value"] == pytest.approx(gate["p_value"])
    assert metrics["holdout.trading.trades"] == gate["challenger"]["trading"]["trades"]
    folds = client.get_metric_history(run.run_id, "cv.fold.log_loss")
    assert [m.step for m in folds] == [0, 1]
    assert [m.value for m in folds] == pytest.approx(
        [f["metrics"]["log_loss"] for f in metadata["cross_validation"]["folds"]]
    )
    trials = client.get_metric_history(run.run_id, "tuning.trial_cv_log_loss")
    assert len(trials) == 3
    assert tags["streamlearn.version"] == "v-123" and tags["streamlearn.action"] == "activated"
    assert tags["streamlearn.gate"] == "pass" and tags["streamlearn.reason"] == "why"
    # artifacts live next to the database, not in whatever folder the retrainer runs in
    assert stored.info.artifact_uri.startswith((tmp_path / "mlruns").as_uri())
    artifacts = {a.path for a in client.list_artifacts(run.run_id, "model")}
    assert artifacts == {"model/model.ubj", "model/metadata.json"}
    local = client.download_artifacts(run.run_id, "model/model.ubj", str(tmp_path))
    assert Path(local).read_bytes() == retrain.trained.model_bytes()
    assert run.as_metadata() == {
        "system": "mlflow",
        "run_id": run.run_id,
        "experiment": "streamlearn-test",
    }


def test_run_contents_skip_what_is_not_a_finite_number(retrain):
    metadata = {**retrain.metadata, "validation_metrics": {"log_loss": float("nan"), "x": None}}
    names = {m.name for m in run_metrics(metadata)}
    assert "validation.log_loss" not in names and "holdout.log_loss" in names
    assert all(len(v) <= 500 for v in run_params(metadata).values())


def test_a_missing_mlflow_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(MissingExtraError) as caught:
        MlflowTracker("sqlite:///x.db", "e")
    assert str(caught.value) == (
        "tracking.mlflow_uri needs mlflow: pip install 'streamlearn[tracking]'"
    )
