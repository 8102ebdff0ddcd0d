"""The ``stacked`` blend mode: a logistic meta-learner per key, learned online, checkpointed."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import pytest

from app.composition import blend_fit
from config import load_settings
from models.blend import Blender, SignalStatus
from models.blend_weights import WeightFitConfig
from models.codec import decode_key_model, encode_key_model
from models.evaluation import log_loss
from models.keyed import KeyModel
from models.market import MEAN_REVERSION, MarketSimulator
from models.online import OnlineConfig
from models.stacking import MetaLearner, StackConfig
from tests.unit.blending import (
    momentum_model_ports,
    one_part_informative,
    restarted_after_checkpoint,
    straight_and_restored,
)
from tests.unit.engines import claimed, in_memory_engine, input_records


@pytest.mark.parametrize("inputs", ["interaction", "logits", "probabilities", "both"])
@pytest.mark.parametrize("informative", ["batch", "online"])
def test_the_meta_learner_leans_on_the_part_that_knows(informative, inputs):
    config = StackConfig(w_batch=0.8, inputs=inputs, learning_rate=0.02, min_outcomes=0)
    meta = MetaLearner(config)
    rows = list(one_part_informative(informative, 6000))
    scores, labels = [], []
    for pb, po, won in rows:
        scores.append(meta.score(pb, po))
        labels.append(won)
        meta.observe(pb, po, won)
    w_batch, w_online = meta.part_weights()
    assert w_batch + w_online == pytest.approx(1.0)
    assert (w_batch if informative == "batch" else w_online) > 0.8  # online starts at 0.2
    # Over the last 2,000 outcomes it scores better than the fixed 0.8 / 0.2 mix.
    tail = slice(4000, None)
    fixed = np.array([0.8 * pb + 0.2 * po for pb, po, _ in rows])
    won = np.array(labels, dtype=float)
    assert log_loss(np.array(scores)[tail], won[tail]) < log_loss(fixed[tail], won[tail])


def test_before_min_outcomes_the_fixed_blend_scores_then_the_meta_learner():
    blender = Blender(w_batch=0.8, w_online=0.2, min_updates=0)
    meta = MetaLearner(StackConfig(min_outcomes=3))
    for _ in range(3):
        warm = blender.blend(0.9, 0.1, 10, meta)
        assert (warm.score, warm.w_batch, warm.w_online) == (pytest.approx(0.74), 0.8, 0.2)
        meta.observe(0.9, 0.1, True)
    ready = blender.blend(0.9, 0.1, 10, meta)
    assert ready.status is SignalStatus.OK
    assert ready.score == meta.score(0.9, 0.1) != pytest.approx(0.74)
    assert (ready.w_batch, ready.w_online) == meta.part_weights()
    # Cold-start rules are the same as in the linear modes.
    assert blender.blend(None, 0.3, 10, meta).status is SignalStatus.ONLINE_ONLY
    assert blender.blend(0.3, None, 10, meta).status is SignalStatus.BATCH_ONLY


def test_the_checkpointed_meta_learner_continues_exactly_like_one_never_stopped():
    config = StackConfig(inputs="both", min_outcomes=10)
    rows = list(one_part_informative("online", 1500, seed=3))
    straight, restored = straight_and_restored(config, rows, 777)
    assert restored.blend.model._weights.to_dict() == straight.blend.model._weights.to_dict()
    assert restored.blend.model.intercept == straight.blend.model.intercept
    assert restored.blend.updates == straight.blend.updates == 1500


def test_a_meta_learner_saved_with_other_inputs_starts_again_from_the_configured_mix():
    saved = KeyModel.fresh(OnlineConfig(), blend=StackConfig(inputs="probabilities"))
    saved.blend.observe(0.7, 0.2, True)
    logits = StackConfig(inputs="logits")
    restored = decode_key_model(encode_key_model(saved), OnlineConfig(), blend=logits)
    assert restored.blend.updates == 0
    assert restored.blend.model._weights.to_dict() == logits.initial_weights()
    # Fixed-mode states load in stacked mode (a fresh meta-learner) and the other way round.
    fixed = encode_key_model(KeyModel.fresh(OnlineConfig()))
    assert decode_key_model(fixed, OnlineConfig(), blend=logits).blend.updates == 0
    assert decode_key_model(encode_key_model(saved), OnlineConfig()).blend is None
    # A key saved in the optimized mode starts a fresh meta-learner, and the other way round.
    optimized = KeyModel.fresh(OnlineConfig(), blend=WeightFitConfig())
    optimized.blend.observe(0.6, 0.4, True)
    assert (
        decode_key_model(encode_key_model(optimized), OnlineConfig(), blend=logits).blend.updates
        == 0
    )
    window = decode_key_model(
        encode_key_model(saved), OnlineConfig(), blend=WeightFitConfig()
    ).blend
    assert len(window.rows) == 0 and window.w_batch is None


def test_stacked_settings_map_to_the_meta_learner():
    settings = load_settings(environ={}).with_overrides(
        blend={"mode": "stacked", "stack_inputs": "both", "stack_learning_rate": 0.05}
    )
    config = blend_fit(settings)
    assert (config.inputs, config.learning_rate, config.w_batch) == ("both", 0.05, 0.8)
    assert blend_fit(load_settings(environ={})) is None


def test_through_the_engine_the_stack_learns_and_a_replay_agrees(tmp_path):
    """A momentum-trained batch model on a mean-reverting stream: the meta-learner moves its
    weight to the online part, signals report it, and a restart from a checkpoint replays to
    the same meta-learner."""
    groups = {
        "batch": {"store": str(tmp_path)},
        "blend": {"mode": "stacked", "stack_min_outcomes": 50},
    }
    settings = load_settings(environ={}).with_overrides(**groups)
    ports = momentum_model_ports(settings)
    flipped = MarketSimulator(seed=4, regimes=(MEAN_REVERSION,))
    outcomes = input_records(flipped.outcomes(3000))

    async def scenario():
        straight = await claimed(in_memory_engine(ports, **groups))
        await straight.learner.process(outcomes)
        meta = straight.state.model("global").blend
        assert meta.updates > 2500
        assert meta.part_weights()[1] > 0.5
        signal = orjson.loads(
            (await straight.scorer.score(input_records(flipped.requests(1)))).outgoing[0].value
        )
        assert signal["status"] == "ok"
        assert (signal["w_batch"], signal["w_online"]) == meta.part_weights()
        await straight.close()
        restarted = await restarted_after_checkpoint(
            settings, ports.pointer.version, outcomes, **groups
        )
        assert restarted.blend.model._weights.to_dict() == meta.model._weights.to_dict()
        assert restarted.blend.model.intercept == meta.model.intercept

    asyncio.run(scenario())
