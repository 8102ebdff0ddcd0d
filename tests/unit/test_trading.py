"""Trading metrics and their bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from models.trading import trading_metrics, trading_report


def test_intervals_cover_the_truth_and_narrow_with_more_trades():
    rng = np.random.default_rng(3)
    widths = []
    for n in (200, 5000):
        won = rng.random(n) < 0.55
        rr = np.where(won, 1.5, -1.0)
        report = trading_report(np.ones(n), won.astype(float), rr, 0.5, n_resamples=400)
        low, high = report["intervals"]["win_rate"]
        assert low < 0.55 < high
        low_r, high_r = report["intervals"]["mean_r"]
        assert low_r < report["mean_r"] < high_r
        widths.append(high - low)
        assert report["intervals"]["max_drawdown"][0] > 0
    assert widths[1] < widths[0] / 3  # ~1/sqrt(25)


def test_resampled_metrics_agree_with_the_metrics_of_one_sample():
    rng = np.random.default_rng(4)
    rr = rng.normal(0.1, 1.0, 300)
    labels = (rr > 0).astype(float)
    one = trading_metrics(np.ones(300), labels, rr, 0.5)
    report = trading_report(np.ones(300), labels, rr, 0.5, n_resamples=2000, level=0.99)
    for name in ("win_rate", "mean_r", "sharpe", "profit_factor", "max_drawdown"):
        low, high = report["intervals"][name]
        assert low <= getattr(one, name) <= high, name
    assert report["sharpe"] == pytest.approx(rr.mean() / rr.std(ddof=1))


def test_unknown_r_leaves_only_the_win_rate():
    report = trading_report(np.ones(10), np.ones(10), None, 0.5, n_resamples=100)
    assert report["mean_r"] is None
    assert report["intervals"]["win_rate"] == [1.0, 1.0]
    assert report["intervals"]["mean_r"] is None
