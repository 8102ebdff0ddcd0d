"""kill -9 at random points while learning: the end state equals an uninterrupted run, exactly."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from app.composition import memory_engine, memory_ports, model_configs, online_config
from config.settings import ProcessingSettings
from models.codec import decode_key_model
from models.keyed import KeyModel
from models.market import MarketSimulator
from streams.contracts import encode_message
from streams.records import InputRecord

N_OUTCOMES = 40_000
KEYS = tuple(f"K{i}" for i in range(6))
KILLS = 3


def _uninterrupted(outcomes: list[dict], settings) -> dict[str, KeyModel]:
    """The same learner and metrics, in-process, each key's outcomes in production order."""
    config = online_config(settings)
    models: dict[str, KeyModel] = {}
    for outcome in outcomes:
        model = models.setdefault(outcome["key"], KeyModel.fresh(config))
        won = outcome["label"] == 1
        model.metrics.update("online", won, model.learner.predict_proba(outcome["features"]))
        model.learner.learn(outcome["features"], won)
    return models


#: Settings of the crash runs: small checkpoints and batches, so kills land inside both.
CRASH_SETTINGS = {
    "model": {"key_field": "key"},
    "online": {"decay_half_life": 2000},
    "checkpoint": {"every_outcomes": 300, "interval_ms": 100},
}


#: The default engine here; the Faust engine's kills run in the chaos suite's short version
#: (``make test``: 4 kills, both engines, the same exactly-once and bit-for-bit checks) and in
#: ``make chaos`` (50 kills per engine), which keeps ``make test`` within its 15 minutes.
@pytest.mark.parametrize("engine", [ProcessingSettings().engine])
def test_kill_dash_nine_never_loses_or_repeats_an_outcome(deploy, tmp_path, engine):
    deployment = deploy(**CRASH_SETTINGS, processing={"learn_batch": 200, "engine": engine})
    _kill_while_learning_then_compare(deployment, tmp_path)


def test_kill_dash_nine_on_redis_cluster(deploy_cluster, tmp_path):
    """The same kills with the state sharded over a three-master Redis Cluster (4 partitions:
    each partition's hash on the node owning its slot, checkpointed by its own script)."""
    deployment = deploy_cluster(
        **CRASH_SETTINGS, processing={"learn_batch": 200}, topics={"partitions": 4}
    )
    _kill_while_learning_then_compare(deployment, tmp_path)


def _learn_with_kills(
    deployment, tmp_path, outcomes: list[dict], rng: random.Random, earliest: float = 0.1
) -> list[int]:
    """Produce ``outcomes``, start a worker and SIGKILL it ``KILLS`` times at random points
    between ``earliest`` and half of the stream (restarting it each time), then wait until
    every outcome is applied. Returns how many were applied at each kill.

    Only 60% of the stream is produced before the kills and the rest after them, so every kill
    lands inside the stream: a fast engine can learn thousands of outcomes between reaching a
    target and its kill (it once learned all 12,000 of a run before the first kill). A kill
    may find the worker caught up with what was produced so far; the restarted worker must
    then still resume exactly there when the rest arrives."""
    producer = deployment.producer()
    total = len(outcomes)
    first = int(0.6 * total)
    producer.send_outcomes(outcomes[:first])
    producer.flush()

    def applied_total() -> int:
        return sum(offset + 1 for offset in deployment.applied_offsets().values())

    targets = sorted(rng.uniform(earliest, 0.5) * total for _ in range(KILLS))
    kill_log = []
    worker = deployment.worker(tmp_path).start()
    for target in targets:
        deployment.wait_for(lambda t=target: applied_total() >= t, 120, f"progress {target:.0f}")
        time.sleep(rng.uniform(0.0, 0.3))  # land anywhere inside a batch or a checkpoint
        before = applied_total()
        worker.kill9()
        kill_log.append(before)
        assert before <= first
        worker = deployment.worker(tmp_path).start()
    producer.send_outcomes(outcomes[first:])
    producer.flush()
    deployment.wait_for(lambda: applied_total() == total, 180, "the whole stream applied")
    worker.stop()
    return kill_log


def _kill_while_learning_then_compare(deployment, tmp_path) -> None:
    outcomes = MarketSimulator(seed=5, keys=KEYS, change_points=[15_000]).outcomes(N_OUTCOMES)
    kill_log = _learn_with_kills(deployment, tmp_path, outcomes, random.Random(20261122), 0.05)
    streamed = deployment.key_models()
    reference = _uninterrupted(outcomes, deployment.settings)
    assert len(kill_log) == KILLS
    assert set(streamed) == set(reference)
    for key, model in reference.items():
        assert streamed[key].updates == model.updates, key
        assert streamed[key].learner.weights == model.learner.weights, key
        assert streamed[key].learner.intercept == model.learner.intercept, key
        assert streamed[key].learner.scaler.means == model.learner.scaler.means, key
        assert (
            streamed[key].metrics.sources["online"].summary()
            == model.metrics.sources["online"].summary()
        ), key


@pytest.mark.parametrize("mode", ["optimized", "stacked"])
def test_kill_dash_nine_during_blend_refits_gives_the_uninterrupted_weights(deploy, tmp_path, mode):
    """Blend weights refitted every 25 outcomes (optimized) or learned every outcome (stacked)
    while the worker is killed three times: every key ends with the weights of a run that was
    never interrupted (the worker's own engine, in process, fed each key's outcomes once)."""
    deployment = deploy(
        model={"key_field": "key"},
        blend={"mode": mode, "window": 200, "refit_every": 25, "stack_min_outcomes": 50},
        checkpoint={"every_outcomes": 300, "interval_ms": 100},
        processing={"learn_batch": 200},
    )
    history = tmp_path / "history.parquet"
    MarketSimulator(seed=8, keys=KEYS).frame(3000).to_parquet(history)
    trained = deployment.cli("train", "--from-file", str(history))
    assert trained.returncode == 0, trained.stderr
    version = deployment.registry().active()
    outcomes = MarketSimulator(seed=9, keys=KEYS, change_points=[5000]).outcomes(12_000)
    assert len(_learn_with_kills(deployment, tmp_path, outcomes, random.Random(20261124))) == KILLS

    settings = deployment.settings
    configs = model_configs(settings)
    streamed = {
        key: decode_key_model(blob, configs.online, configs.drift, configs.blend)
        for snapshot in deployment.snapshots().values()
        for key, blob in snapshot.states.items()
    }
    reference = _in_process(settings, version, outcomes)
    assert set(streamed) == set(reference) == set(KEYS)
    for key, model in reference.items():
        mine = streamed[key]
        assert mine.updates == model.updates == sum(o["key"] == key for o in outcomes), key
        if mode == "optimized":
            assert model.blend.refits > 60, key
            assert mine.blend.refits == model.blend.refits, key
            assert mine.blend.w_batch == model.blend.w_batch, key
            assert list(mine.blend.rows) == list(model.blend.rows), key
        else:
            assert model.blend.updates > 1500, key
            assert mine.blend.updates == model.blend.updates, key
            assert mine.blend.model._weights.to_dict() == model.blend.model._weights.to_dict()
            assert mine.blend.model.intercept == model.blend.model.intercept, key


def _in_process(settings, version: str, outcomes: list[dict]) -> dict[str, KeyModel]:
    """The worker's engine on in-memory ports, every outcome once, in order, one partition."""
    ports = memory_ports(settings)
    ports.pointer.version = version
    engine = memory_engine(settings, ports)
    records = [
        InputRecord(0, i, o["key"].encode(), encode_message(o)) for i, o in enumerate(outcomes)
    ]

    async def learn() -> dict[str, KeyModel]:
        await engine.state.ensure(0)
        for start in range(0, len(records), 500):
            await engine.learner.process(records[start : start + 500])
        return dict(engine.state.partitions[0].models)

    return asyncio.run(learn())
