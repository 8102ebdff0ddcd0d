"""Blending and cold starts: the score is the weighted parts, or says why it is not."""

from __future__ import annotations

import math

import pytest

from models.blend import Blender, SignalStatus

BLENDER = Blender(w_batch=0.8, w_online=0.2, min_updates=50)


@pytest.mark.parametrize(
    ("p_batch", "p_online", "updates", "status", "weights"),
    [
        (0.7, 0.4, 50, SignalStatus.OK, (0.8, 0.2)),
        (0.7, 0.4, 49, SignalStatus.BATCH_ONLY, (1.0, 0.0)),
        (0.7, None, 0, SignalStatus.BATCH_ONLY, (1.0, 0.0)),
        (None, 0.4, 50, SignalStatus.ONLINE_ONLY, (0.0, 1.0)),
        (None, 0.4, 10, SignalStatus.NO_MODEL, (0.0, 0.0)),
        (None, None, 0, SignalStatus.NO_MODEL, (0.0, 0.0)),
    ],
)
def test_cold_start_rules(p_batch, p_online, updates, status, weights):
    blend = BLENDER.blend(p_batch, p_online, updates)
    assert blend.status is status
    assert (blend.w_batch, blend.w_online) == weights
    if status is SignalStatus.NO_MODEL:
        assert blend.score is None and blend.reason
        return
    parts = blend.w_batch * (blend.p_batch or 0.0) + blend.w_online * (blend.p_online or 0.0)
    assert math.isclose(blend.score, parts, abs_tol=1e-12)
    assert (blend.reason is None) == (status is SignalStatus.OK)


def test_unused_parts_are_reported_as_missing_not_defaulted():
    blend = BLENDER.blend(0.7, 0.4, 3)
    assert blend.p_online is None
    assert "3 updates < min_updates 50" in blend.reason


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.5, 1.5])
def test_a_part_that_is_not_a_finite_probability_counts_as_missing(bad):
    blender = Blender(w_batch=0.8, w_online=0.2, min_updates=10)
    online_bad = blender.blend(p_batch=0.6, p_online=bad, online_updates=50)
    assert online_bad.status is SignalStatus.BATCH_ONLY and online_bad.score == 0.6
    batch_bad = blender.blend(p_batch=bad, p_online=0.4, online_updates=50)
    assert batch_bad.status is SignalStatus.ONLINE_ONLY and batch_bad.score == 0.4
    both = blender.blend(p_batch=bad, p_online=bad, online_updates=50)
    assert both.status is SignalStatus.NO_MODEL and both.score is None
