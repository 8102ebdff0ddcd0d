"""Shadow evaluation: the staged version is scored on live outcomes, once per outcome."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from models.adapters.directory_blobs import DirectoryBlobStore
from models.adapters.memory_pointer import MemoryPointer
from models.adapters.memory_state_store import MemoryStateStore
from models.batch import feature_matrix, load_batch_model
from models.codec import decode_key_model, encode_key_model, shadow_of
from models.market import FEATURES, MarketSimulator
from models.shadow import ShadowTally
from models.store import ModelStore
from models.training import TrainConfig, train_batch_model
from streams.batch_follower import BatchModelFollower, BatchModelHolder
from tests.unit.test_learning import SETTINGS, _learner, _records


def _tally(won, p_staged, p_champion) -> ShadowTally:
    tally = ShadowTally("v2")
    for w, ps, pc in zip(won, p_staged, p_champion, strict=True):
        tally.update(bool(w), float(ps), None if pc is None else float(pc))
    return tally


def test_the_tally_is_the_metrics_of_the_outcomes_it_saw_and_a_paired_test():
    rng = np.random.default_rng(3)
    won = rng.random(2000) < 0.45
    p_staged = np.clip(0.45 + 0.3 * (won - 0.45) + rng.normal(0, 0.15, 2000), 0.01, 0.99)
    p_champion = np.clip(0.45 + rng.normal(0, 0.15, 2000), 0.01, 0.99)
    report = _tally(won, p_staged, p_champion).report(alpha=0.05)
    assert report["outcomes"] == report["paired"] == 2000
    assert report["staged"]["log_loss"] == pytest.approx(log_loss(won, p_staged))
    assert report["champion"]["log_loss"] == pytest.approx(log_loss(won, p_champion))
    assert report["staged"]["brier"] == pytest.approx(brier_score_loss(won, p_staged))
    assert report["staged"]["accuracy"] == pytest.approx(np.mean((p_staged > 0.5) == won))
    gain = -np.where(won, np.log(p_champion), np.log(1 - p_champion)) + np.where(
        won, np.log(p_staged), np.log(1 - p_staged)
    )
    assert orjson.loads(orjson.dumps(report)) == report  # plain numbers, for --json
    improvement = report["improvement"]
    se = gain.std(ddof=1) / np.sqrt(len(gain))
    assert improvement["mean"] == pytest.approx(gain.mean())
    assert improvement["ci_low"] == pytest.approx(gain.mean() - 1.6448536 * se)
    assert improvement["better"] is True and improvement["p_value"] < 1e-6
    # the same numbers the other way round: the champion is not better than the staged one
    worse = _tally(won, p_champion, p_staged).report()["improvement"]
    assert worse["better"] is False and worse["p_value"] > 0.99


def test_tallies_add_up_over_keys_and_survive_the_state_codec():
    rng = np.random.default_rng(4)
    won = rng.random(300) < 0.5
    p = rng.uniform(0.05, 0.95, (300, 2))
    whole = _tally(won, p[:, 0], p[:, 1])
    parts = [_tally(won[i::3], p[i::3, 0], p[i::3, 1]) for i in range(3)]
    other = _tally(won, p[:, 1], p[:, 0])
    other.version = "v-old"
    total = ShadowTally.combined([*parts, other], "v2")
    assert total.n == whole.n and total.paired == whole.paired
    assert total.log_loss == pytest.approx(whole.log_loss)
    assert total.difference_sq == pytest.approx(whole.difference_sq)
    # only the champion's side is missing where there was no champion
    alone = _tally(won[:10], p[:10, 0], [None] * 10)
    assert (alone.n, alone.paired) == (10, 0) and "improvement" not in alone.report()
    with pytest.raises(ValueError, match="inconsistent"):
        ShadowTally.decode({**alone.encode(), "paired": 11})
    with pytest.raises(ValueError, match="finite"):
        ShadowTally.decode({**alone.encode(), "log_loss": float("inf")})


def test_the_learner_scores_the_staged_version_once_per_outcome_across_a_restore(tmp_path):
    store = ModelStore(DirectoryBlobStore(tmp_path))
    market = MarketSimulator(seed=30)
    frame = market.frame(6000)
    config = TrainConfig(threads=1, purge_s=30)
    champion = train_batch_model(frame.iloc[:3000], FEATURES, config).save_to(store)
    challenger = train_batch_model(frame.iloc[3000:], FEATURES, config).save_to(store)
    outcomes = market.outcomes(600)
    pointer = MemoryPointer(champion, staged_version=challenger)

    def learner(state_store):
        made = _learner(state_store)
        made._batch = BatchModelFollower(BatchModelHolder(), pointer, store, FEATURES)
        return made

    async def staged_loaded(made) -> None:
        """Until the staged version is held (its first load goes on in the background)."""
        while True:
            await made._batch.model_for_batch()  # the pointer read names the staged version
            if await made._batch.shadow_for_batch() is not None:
                return
            await asyncio.sleep(0.01)

    async def scenario():
        states = MemoryStateStore()
        first = learner(states)
        await first.state.ensure(0)
        await staged_loaded(first)
        await first.process(_records(outcomes[:400]))
        await first.state.checkpoint()
        # a successor takes over from the checkpoint and is handed the same records again
        successor = learner(states)
        await successor.state.ensure(0)
        await staged_loaded(successor)
        replay = await successor.process(_records(outcomes[:400]))
        assert replay.replayed == 400
        await successor.process(_records(outcomes[400:], start=400))
        await successor.state.checkpoint()
        return await states.read(0)

    snapshot = asyncio.run(scenario())
    [blob] = snapshot.states.values()
    tally = shadow_of(blob)
    assert tally is not None and tally.version == challenger
    assert tally.n == tally.paired == 600  # every outcome once, none twice
    staged = load_batch_model(store, challenger, FEATURES).predict(
        feature_matrix([o["features"] for o in outcomes], FEATURES)
    )
    won = np.array([o["label"] == 1 for o in outcomes])
    assert tally.report()["staged"]["log_loss"] == pytest.approx(log_loss(won, staged), rel=1e-9)
    key = decode_key_model(blob, _learner(MemoryStateStore()).state.config)
    assert encode_key_model(key) == blob  # the tally round-trips with the key's state
    assert SETTINGS.model.features == FEATURES
