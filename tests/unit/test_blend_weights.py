"""The ``optimized`` blend mode: per-key weights fitted on recent outcomes, checkpointed."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from config import load_settings
from models.blend_weights import WeightFitConfig, fitted_weight
from models.codec import decode_key_model, encode_key_model
from models.keyed import KeyModel
from models.market import MEAN_REVERSION, MarketSimulator
from models.online import OnlineConfig
from tests.unit.blending import (
    momentum_model_ports,
    one_part_informative,
    restarted_after_checkpoint,
    straight_and_restored,
)
from tests.unit.engines import claimed, in_memory_engine, input_records


@pytest.mark.parametrize(
    ("informative", "low", "high"), [("batch", 0.95, 1.0), ("online", 0.0, 0.2)]
)
def test_weights_converge_to_the_part_that_knows_when_the_other_is_noise(informative, low, high):
    config = WeightFitConfig(w_batch=0.8, window=500, refit_every=100, prior_outcomes=100)
    window = config.fresh()
    for pb, po, won in one_part_informative(informative, 5000):
        window.observe(pb, po, won)
    assert window.refits == 50
    assert low <= window.w_batch <= high
    # Without the prior the fit goes all the way.
    unshrunk = fitted_weight(window.rows, WeightFitConfig(w_batch=0.8, prior_outcomes=0))
    assert unshrunk > 0.99 if informative == "batch" else unshrunk < 0.05


def test_a_short_window_stays_near_the_configured_weight():
    config = WeightFitConfig(w_batch=0.8, window=500, refit_every=10, prior_outcomes=100)
    window = config.fresh()
    for pb, po, won in one_part_informative("online", 10):
        window.observe(pb, po, won)
    assert window.refits == 1
    assert 0.7 < window.w_batch < 0.8  # 10 rows against 100 pseudo-rows for 0.8


def test_the_checkpointed_window_refits_exactly_like_one_never_stopped():
    config = WeightFitConfig(window=300, refit_every=50)
    rows = list(one_part_informative("online", 1000, seed=3))
    straight, restored = straight_and_restored(config, rows, 420)
    assert restored.blend.w_batch == straight.blend.w_batch
    assert list(restored.blend.rows) == list(straight.blend.rows)
    assert restored.blend.refits == straight.blend.refits == 20


def test_states_without_a_window_load_in_either_mode():
    config = WeightFitConfig()
    fixed = encode_key_model(KeyModel.fresh(OnlineConfig()))
    started = decode_key_model(fixed, OnlineConfig(), blend=config).blend
    assert started is not None and len(started.rows) == 0 and started.w_batch is None
    optimized = KeyModel.fresh(OnlineConfig(), blend=config)
    optimized.blend.observe(0.6, 0.4, True)
    assert decode_key_model(encode_key_model(optimized), OnlineConfig()).blend is None


def test_through_the_engine_the_blend_leans_on_the_part_that_is_right_and_replays_agree(tmp_path):
    """The batch model learned a momentum market; the stream is mean-reverting, where the
    online model adapts and the batch model is wrong: each key's weight moves toward online,
    signals carry it, and a restart from a checkpoint replays to the same weight."""
    groups = {
        "batch": {"store": str(tmp_path)},
        "blend": {"mode": "optimized", "window": 400, "refit_every": 50},
    }
    settings = load_settings(environ={}).with_overrides(**groups)
    ports = momentum_model_ports(settings)
    flipped = MarketSimulator(seed=4, regimes=(MEAN_REVERSION,))
    outcomes = input_records(flipped.outcomes(2000))

    async def scenario():
        straight = await claimed(in_memory_engine(ports, **groups))
        await straight.learner.process(outcomes)
        fitted = straight.state.model("global").blend
        assert fitted.refits > 10 and fitted.w_batch < 0.5
        signal = orjson.loads(
            (await straight.scorer.score(input_records(flipped.requests(1)))).outgoing[0].value
        )
        assert signal["status"] == "ok"
        assert (signal["w_batch"], signal["w_online"]) == (fitted.w_batch, 1 - fitted.w_batch)
        await straight.close()
        restarted = await restarted_after_checkpoint(
            settings, ports.pointer.version, outcomes, **groups
        )
        assert restarted.blend.w_batch == fitted.w_batch

    asyncio.run(scenario())
