"""A batch version's blend, fitted at retrain time on walk-forward out-of-fold predictions, and
``blend.start = fitted``: every mode starts from it."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import orjson
import pandas as pd
import pytest

from app.composition import memory_ports, train_config
from config import load_settings
from models.blend import Blender
from models.blend_training import (
    BlendTrainConfig,
    fit_version_blend,
    prequential_online,
    walk_forward_batch,
)
from models.blend_weights import WeightFitConfig
from models.evaluation import prequential_probabilities
from models.gate import GateConfig
from models.market import MarketSimulator
from models.online import OnlineConfig, OnlineLearner
from models.retrain import challenge
from models.stacking import StackConfig
from models.training import TrainConfig, train_batch_model
from models.version_blend import StackStart, VersionBlend
from tests.unit.engines import claimed, in_memory_engine, input_records

FEATURES = ["x1", "x2", "x3"]


def xor_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Wins where x1 and x2 have the same sign: trees learn it, a linear model cannot."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    same = (x[:, 0] * x[:, 1]) > 0
    label = np.where(rng.random(n) < 0.9, same, ~same).astype(int)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame.insert(0, "label", label)
    frame.insert(0, "key", np.where(np.arange(n) % 2 == 0, "a", "b"))
    frame.insert(0, "ts", np.arange(n, dtype=np.int64) * 1000)
    return frame


def test_a_fold_never_sees_its_own_rows_or_later_ones():
    """Walk-forward: changing the labels from some row on leaves every earlier prediction, and
    those of the block holding that row, exactly as they were."""
    frame = xor_frame(3000)
    config = TrainConfig(threads=1, purge_s=20)
    before = walk_forward_batch(frame, FEATURES, config, folds=4, rounds=30)
    blocks = np.linspace(0, 3000, 6).astype(int)  # 5 blocks: the first only trains
    assert np.isnan(before[: blocks[1]]).all() and np.isfinite(before[blocks[1] :]).all()
    changed = frame.copy()
    changed.loc[blocks[3] + 5 :, "label"] = 1 - changed.loc[blocks[3] + 5 :, "label"]
    after = walk_forward_batch(changed, FEATURES, config, folds=4, rounds=30)
    np.testing.assert_array_equal(after[: blocks[4]], before[: blocks[4]])
    assert not np.array_equal(after[blocks[4] :], before[blocks[4] :])


def test_the_online_part_is_river_prequential_per_key():
    frame = xor_frame(600)
    keys = frame["key"].tolist()
    p, updates = prequential_online(frame, FEATURES, keys, OnlineConfig())
    for key in ("a", "b"):
        rows = frame[frame["key"] == key]
        outcomes = [
            {"features": dict(zip(FEATURES, r, strict=True)), "label": int(y)}
            for r, y in zip(rows[FEATURES].to_numpy(), rows["label"], strict=True)
        ]
        expected = prequential_probabilities(OnlineLearner(OnlineConfig()), outcomes)
        assert p[rows.index].tolist() == expected.tolist()
        assert updates[rows.index].tolist() == list(range(len(rows)))


def fitted_on(frame: pd.DataFrame, **config) -> tuple[dict, VersionBlend]:
    trained = train_batch_model(frame, FEATURES, TrainConfig(threads=1))
    fit = fit_version_blend(trained, FEATURES, frame["key"].tolist(), BlendTrainConfig(**config))
    assert fit.blend is not None
    return fit.as_metadata(), fit.blend


def test_where_only_the_batch_model_can_learn_the_fit_leans_on_it():
    metadata, blend = fitted_on(xor_frame(8000))
    assert blend.w_batch > 0.95  # the configured 0.8 was assumed; 0.95+ is fitted
    oof, holdout = metadata["out_of_fold"], metadata["holdout"]
    # The stacked meta-learner scores like the batch model, far from the online one.
    assert holdout["stacked"]["log_loss"] < holdout["batch"]["log_loss"] + 0.01
    assert holdout["stacked"]["log_loss"] < holdout["online"]["log_loss"] - 0.1
    assert oof["rows"] == blend.rows > 4000
    for rows in (oof, holdout):  # both fits beat the configured mix, in and out of sample
        assert rows["fitted"]["log_loss"] < rows["configured"]["log_loss"]
        assert rows["stacked"]["log_loss"] < rows["configured"]["log_loss"]
    assert VersionBlend.from_metadata({"blend": orjson.loads(orjson.dumps(metadata))}) == blend


def test_too_few_scored_rows_fit_nothing_and_say_why():
    trained = train_batch_model(xor_frame(400), FEATURES, TrainConfig(threads=1))
    fit = fit_version_blend(
        trained,
        FEATURES,
        ["k"] * 400,
        BlendTrainConfig(min_updates=10_000),
    )
    assert fit.blend is None and fit.as_metadata()["reason"].startswith("not fitted: 0 ")
    assert VersionBlend.from_metadata({"blend": fit.as_metadata()}) is None


def test_the_retrain_records_the_fit_in_the_version_metadata():
    frame = MarketSimulator(seed=3, keys=("a", "b")).frame(6000)
    features = load_settings(environ={}).model.features
    result = challenge(
        frame,
        features,
        None,
        TrainConfig(threads=1),
        GateConfig(n_resamples=100),
        "test",
        "test",
        blend=BlendTrainConfig(),
        key_column="key",
    )
    blend = result.metadata["blend"]
    assert blend["method"] == "walk-forward out-of-fold" and blend["folds"] == 4
    assert 0.0 <= blend["w_batch"] <= 1.0 and blend["holdout"]["rows"] > 500
    without = challenge(frame, features, None, TrainConfig(threads=1), GateConfig(), "t", "t")
    assert "blend" not in without.metadata


@pytest.mark.parametrize(
    "blend",
    [
        {"w_batch": float("nan")},
        {"w_batch": 1.5},
        {"w_batch": True},
        {"reason": "not fitted"},
        "0.7",
    ],
)
def test_an_unusable_recorded_blend_is_no_blend(blend):
    assert VersionBlend.from_metadata({"blend": blend}) is None
    assert VersionBlend.from_metadata({}) is None


def test_a_bad_recorded_stack_keeps_the_weight_but_not_the_stack():
    recorded = {"w_batch": 0.3, "stack": {"inputs": "logits", "weights": {"x": math.inf}}}
    assert VersionBlend.from_metadata({"blend": recorded}) == VersionBlend(0.3)


FITTED = VersionBlend(
    w_batch=0.3, stack=StackStart("logits", {"logit_batch": 0.2, "logit_online": 1.1}, -0.05)
)


def test_the_blender_starts_from_the_version_only_when_told():
    configured, fitted = Blender(0.8, 0.2, 0), Blender(0.8, 0.2, 0, start="fitted")
    assert configured.start_for(FITTED) is None and fitted.start_for(FITTED) is FITTED
    start = fitted.start_for(FITTED)
    mixed = fitted.blend(0.6, 0.4, 10, None, start)
    assert (mixed.w_batch, mixed.w_online) == (0.3, 0.7)
    assert mixed.score == pytest.approx(0.3 * 0.6 + 0.7 * 0.4)
    assert configured.blend(0.6, 0.4, 10, None, None).w_batch == 0.8
    with pytest.raises(ValueError, match="start must be"):
        Blender(0.8, 0.2, 0, start="latest")


def test_the_optimized_window_shrinks_toward_the_version_weight():
    config = WeightFitConfig(w_batch=0.8, window=500, refit_every=10, prior_outcomes=1000)
    rows = [(0.5, 0.5, i % 2 == 0) for i in range(10)]  # no information: the prior decides
    plain, started = config.fresh(), config.fresh()
    for pb, po, won in rows:
        plain.observe(pb, po, won)
        started.observe(pb, po, won, FITTED)
    assert abs(plain.w_batch - 0.8) < 0.01 and abs(started.w_batch - 0.3) < 0.01


def test_a_meta_learner_starts_from_the_version_stack_with_the_same_inputs():
    started = StackConfig(inputs="logits", min_outcomes=0).fresh()
    started.observe(0.6, 0.4, True, FITTED)
    reference = StackConfig(inputs="logits").fresh()
    reference.model._weights = type(reference.model._weights)(dict(FITTED.stack.weights))
    reference.model.intercept = FITTED.stack.intercept
    reference.observe(0.6, 0.4, True)  # the same first step from the same start
    assert started.model._weights.to_dict() == reference.model._weights.to_dict()
    assert started.model.intercept == reference.model.intercept
    assert FITTED.stack.weights == {"logit_batch": 0.2, "logit_online": 1.1}  # not learned into
    other = StackConfig(inputs="both").fresh()
    assert not other.start_from(FITTED.stack)  # a stack for other inputs is not taken
    later = StackConfig(inputs="logits").fresh()
    later.observe(0.6, 0.4, True)
    before = later.model._weights.to_dict()
    later.observe(0.6, 0.4, True, FITTED)  # only a fresh meta-learner starts from it
    assert set(before) == set(later.model._weights.to_dict())
    assert later.model._weights["logit_batch"] != FITTED.stack.weights["logit_batch"]


def test_through_the_engine_signals_carry_the_active_version_fitted_weights(tmp_path):
    groups = {"batch": {"store": str(tmp_path)}, "blend": {"start": "fitted"}}
    settings = load_settings(environ={}).with_overrides(**groups)
    market = MarketSimulator(seed=2)
    trained = train_batch_model(market.frame(3000), settings.model.features, train_config(settings))
    ports = memory_ports(settings)
    metadata = {**trained.metadata, "blend": FITTED.as_metadata()}
    ports.pointer.version = ports.model_store.save(trained.model_bytes(), metadata)

    async def signal_after_learning(**overrides) -> dict:
        engine = await claimed(in_memory_engine(ports, **{**groups, **overrides}))
        await engine.learner.process(input_records(market.outcomes(100)))
        scored = await engine.scorer.score(input_records(market.requests(1)))
        await engine.close()
        return orjson.loads(scored.outgoing[0].value)

    fitted = asyncio.run(signal_after_learning())
    assert fitted["status"] == "ok" and (fitted["w_batch"], fitted["w_online"]) == (0.3, 0.7)
    configured = asyncio.run(signal_after_learning(blend={"start": "configured"}))
    assert (configured["w_batch"], configured["w_online"]) == (0.8, 0.2)
