"""``streamlearn backtest`` in process: the worker's learner over a file, with in-memory state."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from app.backtest import (
    BacktestOptions,
    VersionTimeline,
    backtest,
    frame_history,
    report,
    run_backtest,
)
from app.cli import main
from app.composition import model_store, train_config
from config import load_settings
from models.evaluation import log_loss, prequential_probabilities
from models.market import MarketSimulator
from models.online import OnlineConfig, OnlineLearner
from models.trading import trading_metrics
from models.training import train_batch_model


def test_the_online_part_of_a_file_backtest_is_river_prequential_per_key(tmp_path, capsys):
    sim = MarketSimulator(seed=5, keys=("a", "b", "c"), change_points=[1500])
    outcomes = sim.outcomes(3000)
    path = tmp_path / "history.csv"
    MarketSimulator(seed=5, keys=("a", "b", "c"), change_points=[1500]).frame(3000).to_csv(path)
    settings = load_settings(environ={}).with_overrides(
        model={"key_field": "key"}, batch={"store": str(tmp_path / "models")}
    )
    out = tmp_path / "report.json"
    options = BacktestOptions(
        from_file=str(path), no_batch=True, modes=("fixed",), segments=(1500,), json_path=str(out)
    )
    assert run_backtest(settings, options) == 0
    doc = orjson.loads(out.read_bytes())
    assert doc["outcomes"] == 3000
    assert [(s["from"], s["to"]) for s in doc["segments"]] == [(0, 1500), (1500, 3000), (0, 3000)]
    for key in ("a", "b", "c"):
        mine = [o for o in outcomes if o["key"] == key]
        learner = OnlineLearner(OnlineConfig())
        probabilities = prequential_probabilities(learner, mine)
        labels = np.array([o["label"] for o in mine], dtype=float)
        online = doc["keys"][key]["metrics"]["online"]
        assert online["n"] == len(mine)
        assert online["accuracy"] == float(((probabilities > 0.5) == (labels == 1)).mean())
        assert online["log_loss"] == pytest.approx(log_loss(probabilities, labels), rel=1e-12)
    printed = capsys.readouterr().out
    assert "backtest of 3,000 outcomes" in printed and "trades taken at score >= 0.55" in printed


def test_the_batch_model_changes_where_the_timeline_says(tmp_path):
    settings = load_settings(environ={}).with_overrides(batch={"store": str(tmp_path)})
    store = model_store(settings)
    features = settings.model.features
    first = train_batch_model(MarketSimulator(seed=1).frame(2000), features, train_config(settings))
    second = train_batch_model(
        MarketSimulator(seed=2, change_points=[0]).frame(2000), features, train_config(settings)
    )
    v1 = store.save(first.model_bytes(), first.metadata)
    v2 = store.save(second.model_bytes(), second.metadata)
    frame = MarketSimulator(seed=3).frame(1200)
    switch = int(frame["ts"][700])
    history = frame_history(settings, frame, "test")
    timeline = VersionTimeline(((0, v1), (switch, v2)))
    result = backtest(settings, history, timeline, ["fixed", "optimized"])
    replayed = result.replays["fixed"]
    assert replayed.versions == [v1, v2]
    matrix = frame[list(features)].to_numpy(dtype=float)
    expected = np.concatenate(
        [first.model.predict_proba(matrix[:700]), second.model.predict_proba(matrix[700:])]
    )
    assert np.allclose(replayed.scored.part("batch"), expected, rtol=0, atol=1e-7)
    # Both modes saw the same parts; only the blend differs.
    optimized = result.replays["optimized"].scored
    assert optimized.p_online == replayed.scored.p_online
    doc = report(result, threshold=0.6, cuts=[700])
    assert set(doc["segments"][0]["metrics"]) == {
        "online",
        "batch",
        "blend fixed",
        "blend optimized",
    }
    assert doc["trading"]["every trade"]["trades"] == 1200


def test_trading_metrics_of_edge_cases():
    labels = np.array([1.0, 1.0])
    never = trading_metrics(np.array([0.1, 0.2]), labels, np.array([1.0, 2.0]), 0.5)
    assert (never.trades, never.win_rate, never.max_drawdown) == (0, None, 0.0)
    winners = trading_metrics(np.array([0.9, 0.8]), labels, np.array([1.0, 2.0]), 0.5)
    assert math.isinf(winners.profit_factor) and winners.to_dict()["profit_factor"] is None
    assert winners.max_drawdown == 0.0 and winners.sharpe == pytest.approx(1.5 / math.sqrt(0.5))
    unknown_r = trading_metrics(np.array([0.9]), labels[:1], np.array([np.nan]), 0.5)
    assert (unknown_r.trades, unknown_r.win_rate, unknown_r.mean_r) == (1, 1.0, None)


def test_a_file_without_the_feature_columns_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("ts,label,ret_1\n1,1,0.5\n")
    assert main(["backtest", "--from-file", str(path), "--no-batch"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("streamlearn: error: file:") and "ret_5" in err[0]


def test_an_unknown_batch_version_is_refused(tmp_path, capsys, monkeypatch):
    path = tmp_path / "history.csv"
    MarketSimulator(seed=1).frame(100).to_csv(path)
    monkeypatch.setenv("STREAMLEARN_BATCH__STORE", str(tmp_path / "models"))
    assert main(["backtest", "--from-file", str(path), "--batch-version", "nope"]) == 1
    assert "batch version nope is not in the model store" in capsys.readouterr().err
