"""The market simulator: deterministic, with regime changes exactly where asked."""

from __future__ import annotations

import numpy as np

from models.market import FEATURES, MEAN_REVERSION, MOMENTUM, MarketSimulator
from models.training import outcomes_frame


def test_same_seed_same_stream_and_requests_do_not_shift_outcomes():
    a = MarketSimulator(seed=3, change_points=[100])
    b = MarketSimulator(seed=3, change_points=[100])
    b.requests(57)
    assert a.outcomes(300) == b.outcomes(300)
    assert MarketSimulator(seed=4).outcomes(5) != MarketSimulator(seed=3).outcomes(5)


def test_messages_follow_the_contract():
    outcome = MarketSimulator(seed=1, keys=["A", "B"]).outcomes(1)[0]
    assert list(outcome["features"]) == list(FEATURES)
    assert outcome["label"] in (0, 1) and outcome["key"] in ("A", "B")
    request = MarketSimulator(seed=1).requests(1)[0]
    assert set(request) == {"request_id", "key", "ts", "features"}


def test_regime_flip_reverses_what_momentum_predicts():
    sim = MarketSimulator(seed=9, change_points=[20_000])
    assert sim.regime_at(19_999) is MOMENTUM and sim.regime_at(20_000) is MEAN_REVERSION
    frame = outcomes_frame(sim.outcomes(40_000))
    before, after = frame.iloc[:20_000], frame.iloc[20_000:]
    corr_before = np.corrcoef(before["ret_5"], before["label"])[0, 1]
    corr_after = np.corrcoef(after["ret_5"], after["label"])[0, 1]
    assert corr_before > 0.1 and corr_after < -0.1
    assert after["vol_20"].median() > before["vol_20"].median() * 1.2  # data drift too
