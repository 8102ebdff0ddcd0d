"""The online learner: plain River when decay is off, faded statistics and weights when on."""

from __future__ import annotations

import numpy as np
import pytest
from river import datasets, linear_model, optim, preprocessing

from models.decay import DecayedStandardScaler, fading_factor
from models.evaluation import outcomes_to_recover, prequential_hits
from models.market import MarketSimulator
from models.online import OnlineConfig, OnlineLearner


def test_decay_off_is_exactly_river_pipeline():
    learner = OnlineLearner(OnlineConfig())
    river = preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.01))
    for x, y in datasets.Phishing():
        assert learner.predict_proba(x) == river.predict_proba_one(x)[True]
        learner.learn(x, y)
        river.learn_one(x, y)
    assert learner.weights == river["LogisticRegression"].weights
    assert learner.intercept == river["LogisticRegression"].intercept


def test_sample_weighted_learning_is_exactly_river_pipeline_with_w():
    learner = OnlineLearner(OnlineConfig())
    river = preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.01))
    for i, (x, y) in enumerate(datasets.Phishing()):
        weight = 1.0 if i % 3 == 0 else 0.25 + (i % 7) / 2
        assert learner.predict_proba(x) == river.predict_proba_one(x)[True]
        learner.learn(x, y, weight)
        river.learn_one(x, y, w=weight)
    assert learner.weights == river["LogisticRegression"].weights
    assert learner.intercept == river["LogisticRegression"].intercept


def test_decayed_scaler_with_factor_one_is_river_standard_scaler():
    decayed, plain = DecayedStandardScaler(1.0), preprocessing.StandardScaler()
    for x, _ in datasets.Phishing():
        decayed.learn_one(x)
        plain.learn_one(x)
    assert dict(decayed.means) == dict(plain.means)
    assert dict(decayed.vars) == dict(plain.vars)


def test_decayed_scaler_is_the_exponentially_weighted_mean_and_variance():
    rng = np.random.default_rng(0)
    values = rng.normal(3.0, 2.0, size=500)
    factor = fading_factor(50)
    scaler = DecayedStandardScaler(factor)
    for v in values:
        scaler.learn_one({"x": float(v)})
    weights = factor ** np.arange(len(values))[::-1]
    mean = np.sum(weights * values) / weights.sum()
    var = np.sum(weights * (values - mean) ** 2) / weights.sum()
    assert scaler.means["x"] == pytest.approx(mean, rel=1e-10)
    assert scaler.vars["x"] == pytest.approx(var, rel=1e-8)


def test_half_life_means_half_weight():
    assert fading_factor(100) ** 100 == pytest.approx(0.5)
    assert fading_factor(None) == 1.0
    with pytest.raises(ValueError, match="positive"):
        fading_factor(0)


def test_sample_weight_by_realized_rr_is_capped_and_off_by_default():
    assert OnlineConfig().sample_weight(3.0) == 1.0
    weighted = OnlineConfig(weight_by_rr=True, max_sample_weight=2.0)
    assert weighted.sample_weight(-1.5) == 1.5
    assert weighted.sample_weight(7.0) == 2.0
    assert weighted.sample_weight(None) == 1.0


def _outcomes_to_recover(half_life: float | None, seed: int) -> tuple[int, float]:
    """Outcomes after a regime flip until rolling accuracy is back to 95% of the pre-flip level."""
    flip = 30_000
    outcomes = MarketSimulator(seed=seed, change_points=[flip]).outcomes(flip + 8_000)
    hits = prequential_hits(OnlineLearner(OnlineConfig(decay_half_life=half_life)), outcomes)
    return outcomes_to_recover(hits, flip)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_decay_regains_accuracy_faster_after_a_regime_flip(seed):
    with_decay, acc_decay = _outcomes_to_recover(500, seed)
    without, acc_plain = _outcomes_to_recover(None, seed)
    print(
        f"seed {seed}: recovered after {with_decay} outcomes with decay (half-life 500), "
        f"{without} without; pre-flip accuracy {acc_decay:.3f} vs {acc_plain:.3f}"
    )
    assert with_decay < without
