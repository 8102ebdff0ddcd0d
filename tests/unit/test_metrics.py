"""Prequential metrics: the binned ROC AUC agrees with scikit-learn's exact one."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.metrics import BinnedROCAUC, SourceMetrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binned_auc_matches_sklearn_within_the_bin_width(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(20_000) < 0.4
    scores = np.clip(0.5 + 0.15 * (labels - 0.4) + rng.normal(0, 0.2, labels.size), 0, 1)
    auc = BinnedROCAUC()
    for won, p in zip(labels.tolist(), scores.tolist(), strict=True):
        auc.update(won, p)
    assert auc.get() == pytest.approx(roc_auc_score(labels, scores), abs=0.005)


def test_degenerate_cases_and_summary():
    auc = BinnedROCAUC()
    assert auc.get() == 0.5
    auc.update(True, 1.0)  # p = 1.0 falls in the last bin
    assert auc.get() == 0.5
    metrics = SourceMetrics()
    assert metrics.summary()["roc_auc"] is None
    metrics.update(True, 0.9)
    metrics.update(False, 0.1)
    summary = metrics.summary()
    assert summary["n"] == 2 and summary["accuracy"] == 1.0 and summary["roc_auc"] == 1.0
