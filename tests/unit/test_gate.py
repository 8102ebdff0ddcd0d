"""The champion/challenger gate: better by the margin and significant, or rejected with reasons."""

from __future__ import annotations

import numpy as np
import pytest

from models.adapters.directory_blobs import DirectoryBlobStore
from models.batch import load_batch_model
from models.gate import GateConfig, decide, holdout_report
from models.market import FEATURES, MarketSimulator
from models.retrain import challenge
from models.store import ModelStore
from models.training import TrainConfig, train_batch_model


def _champion(tmp_path, frame):
    store = ModelStore(DirectoryBlobStore(tmp_path))
    trained = train_batch_model(frame, FEATURES)
    return load_batch_model(store, store.save(trained.model_bytes(), trained.metadata), FEATURES)


def test_after_a_regime_change_the_challenger_beats_the_stale_champion(tmp_path):
    sim = MarketSimulator(seed=3, change_points=[20_000])
    champion = _champion(tmp_path, sim.frame(20_000))
    result = challenge(
        sim.frame(20_000), FEATURES, champion, TrainConfig(), GateConfig(), "test", "regime flip"
    )
    decision = result.decision
    assert decision.promote, decision.reason
    assert decision.challenger["log_loss"] < decision.champion["log_loss"] - 0.3
    assert decision.ci_low > 0 and decision.p_value < 0.05
    assert decision.champion_version == champion.version
    assert result.metadata["parent_version"] == champion.version
    assert result.metadata["gate"]["promote"] is True
    assert result.metadata["reason"] == "regime flip"


@pytest.mark.parametrize(
    ("config", "phrase"),
    [
        (GateConfig(), "rejected"),
        (GateConfig(primary_metric="roc_auc"), "rejected"),
        (GateConfig(margin=0.01), "below the required margin 0.01"),
    ],
)
def test_on_a_stationary_market_an_equal_challenger_is_rejected(tmp_path, config, phrase):
    sim = MarketSimulator(seed=4)
    champion = _champion(tmp_path, sim.frame(20_000))
    result = challenge(sim.frame(20_000), FEATURES, champion, TrainConfig(), config, "t", "r")
    assert not result.decision.promote
    assert phrase in result.decision.reason
    assert config.primary_metric in result.decision.reason
    assert result.metadata["gate"]["reason"] == result.decision.reason


def test_a_noisy_small_gain_is_not_significant():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400).astype(float)
    champion = np.clip(0.5 + 0.2 * (labels - 0.5) + rng.normal(0, 0.2, 400), 0.01, 0.99)
    challenger = np.clip(champion + rng.normal(0.0, 0.05, 400) + 0.002 * (labels - 0.5), 0.01, 0.99)
    decision = decide(labels, challenger, champion, None, GateConfig(), "v-old")
    assert not decision.promote
    assert "not significant" in decision.reason or "below the required margin" in decision.reason


def test_first_model_is_compared_with_the_base_rate():
    frame = MarketSimulator(seed=5).frame(5_000)
    result = challenge(frame, FEATURES, None, TrainConfig(), GateConfig(), "t", "first")
    assert result.decision.promote
    assert "base-rate predictor" in result.decision.reason
    assert result.metadata["parent_version"] is None


def test_the_gate_reports_trading_metrics_with_intervals():
    labels = np.array([1, 0, 1, 0, 1], dtype=float)
    p_win = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    rr = np.array([2.0, -1.0, 1.5, -1.0, 3.0])
    report = holdout_report(labels, p_win, rr, GateConfig(n_resamples=200))
    trading = report["trading"]
    assert trading["trades"] == 3
    assert trading["win_rate"] == pytest.approx(2 / 3)
    assert trading["mean_r"] == pytest.approx((2.0 - 1.0 + 1.5) / 3)
    assert trading["profit_factor"] == pytest.approx(3.5)
    assert trading["max_drawdown"] == pytest.approx(1.0)
    assert trading["intervals"]["level"] == pytest.approx(0.9)
    low, high = trading["intervals"]["win_rate"]
    assert 0.0 <= low <= 2 / 3 <= high <= 1.0
    nothing = holdout_report(labels, p_win, None, GateConfig(take_threshold=0.95))
    assert nothing["trading"]["trades"] == 0 and nothing["trading"]["intervals"] is None


def test_unknown_primary_metric_is_refused():
    with pytest.raises(ValueError, match="primary_metric"):
        GateConfig(primary_metric="sharpe")
