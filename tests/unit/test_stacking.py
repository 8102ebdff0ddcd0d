"""The ``stacked`` blend mode: a logistic meta-learner per key, learned online, checkpointed."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import orjson
import pytest

from app.composition import memory_ports, stack_config, train_config
from config import load_settings
from models.blend import Blender, SignalStatus
from models.codec import decode_key_model, encode_key_model
from models.evaluation import log_loss
from models.keyed import KeyModel
from models.market import MEAN_REVERSION, MarketSimulator
from models.online import OnlineConfig
from models.stacking import MetaLearner, StackConfig
from models.training import train_batch_model
from tests.unit.engines import claimed, in_memory_engine, input_records


def _stream(informative: str, n: int, seed: int = 1):
    """(p_batch, p_online, won) where one part knows the win probability and the other is
    pure noise."""
    rng = random.Random(seed)
    for _ in range(n):
        truth = rng.random()
        won = rng.random() < truth
        sharp = min(max(truth + rng.gauss(0.0, 0.05), 0.01), 0.99)
        noise = rng.random()
        yield (sharp, noise, won) if informative == "batch" else (noise, sharp, won)


@pytest.mark.parametrize("inputs", ["logits", "probabilities", "both"])
@pytest.mark.parametrize("informative", ["batch", "online"])
def test_the_meta_learner_leans_on_the_part_that_knows(informative, inputs):
    config = StackConfig(w_batch=0.8, inputs=inputs, learning_rate=0.02, min_outcomes=0)
    meta = MetaLearner(config)
    rows = list(_stream(informative, 6000))
    scores, labels = [], []
    for pb, po, won in rows:
        scores.append(meta.score(pb, po))
        labels.append(won)
        meta.learn(pb, po, won)
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
        warm = blender.blend(0.9, 0.1, 10, stack=meta)
        assert (warm.score, warm.w_batch, warm.w_online) == (pytest.approx(0.74), 0.8, 0.2)
        meta.learn(0.9, 0.1, True)
    ready = blender.blend(0.9, 0.1, 10, stack=meta)
    assert ready.status is SignalStatus.OK
    assert ready.score == meta.score(0.9, 0.1) != pytest.approx(0.74)
    assert (ready.w_batch, ready.w_online) == meta.part_weights()
    # Cold-start rules are the same as in the linear modes.
    assert blender.blend(None, 0.3, 10, stack=meta).status is SignalStatus.ONLINE_ONLY
    assert blender.blend(0.3, None, 10, stack=meta).status is SignalStatus.BATCH_ONLY


def test_the_checkpointed_meta_learner_continues_exactly_like_one_never_stopped():
    config = StackConfig(inputs="both", min_outcomes=10)
    rows = list(_stream("online", 1500, seed=3))
    straight = KeyModel.fresh(OnlineConfig(), stack=config)
    for row in rows:
        straight.stack.learn(*row)
    restored = KeyModel.fresh(OnlineConfig(), stack=config)
    for row in rows[:777]:
        restored.stack.learn(*row)
    restored = decode_key_model(encode_key_model(restored), OnlineConfig(), stack=config)
    for row in rows[777:]:
        restored.stack.learn(*row)
    assert restored.stack.model._weights.to_dict() == straight.stack.model._weights.to_dict()
    assert restored.stack.model.intercept == straight.stack.model.intercept
    assert restored.stack.updates == straight.stack.updates == 1500


def test_a_meta_learner_saved_with_other_inputs_starts_again_from_the_configured_mix():
    saved = KeyModel.fresh(OnlineConfig(), stack=StackConfig(inputs="probabilities"))
    saved.stack.learn(0.7, 0.2, True)
    logits = StackConfig(inputs="logits")
    restored = decode_key_model(encode_key_model(saved), OnlineConfig(), stack=logits)
    assert restored.stack.updates == 0
    assert restored.stack.model._weights.to_dict() == logits.initial_weights()
    # Fixed-mode states load in stacked mode (a fresh meta-learner) and the other way round.
    fixed = encode_key_model(KeyModel.fresh(OnlineConfig()))
    assert decode_key_model(fixed, OnlineConfig(), stack=logits).stack.updates == 0
    assert decode_key_model(encode_key_model(saved), OnlineConfig()).stack is None


def test_stacked_settings_map_to_the_meta_learner():
    settings = load_settings(environ={}).with_overrides(
        blend={"mode": "stacked", "stack_inputs": "both", "stack_learning_rate": 0.05}
    )
    config = stack_config(settings)
    assert (config.inputs, config.learning_rate, config.w_batch) == ("both", 0.05, 0.8)
    assert stack_config(load_settings(environ={})) is None


def test_through_the_engine_the_stack_learns_and_a_replay_agrees(tmp_path):
    """A momentum-trained batch model on a mean-reverting stream: the meta-learner moves its
    weight to the online part, signals report it, and a restart from a checkpoint replays to
    the same meta-learner."""
    groups = {
        "batch": {"store": str(tmp_path)},
        "blend": {"mode": "stacked", "stack_min_outcomes": 50},
    }
    settings = load_settings(environ={}).with_overrides(**groups)
    trained = train_batch_model(
        MarketSimulator(seed=2).frame(3000), settings.model.features, train_config(settings)
    )
    ports = memory_ports(settings)
    ports.pointer.version = ports.model_store.save(trained.model_bytes(), trained.metadata)
    flipped = MarketSimulator(seed=4, regimes=(MEAN_REVERSION,))
    outcomes = input_records(flipped.outcomes(3000))

    async def scenario():
        straight = await claimed(in_memory_engine(ports, **groups))
        await straight.learner.process(outcomes)
        meta = straight.state.model("global").stack
        assert meta.updates > 2500
        assert meta.part_weights()[1] > 0.5
        signal = orjson.loads(
            (await straight.scorer.score(input_records(flipped.requests(1)))).outgoing[0].value
        )
        assert signal["status"] == "ok"
        assert (signal["w_batch"], signal["w_online"]) == meta.part_weights()
        await straight.close()

        again = memory_ports(settings)
        again.pointer.version = ports.pointer.version
        first = await claimed(in_memory_engine(again, **groups))
        await first.learner.process(outcomes[:1234])
        await first.state.checkpoint()
        await first.close()
        second = await claimed(in_memory_engine(again, **groups))
        result = await second.learner.process(outcomes[1000:])
        assert result.replayed == 234
        replayed = second.state.model("global").stack
        assert replayed.model._weights.to_dict() == meta.model._weights.to_dict()
        assert replayed.model.intercept == meta.model.intercept
        await second.close()

    asyncio.run(scenario())
