"""kill -9 at random points while learning: the end state equals an uninterrupted run, exactly."""

from __future__ import annotations

import random
import time

import pytest

from app.composition import online_config
from models.keyed import KeyModel
from models.market import MarketSimulator
from tests.integration.infra import ENGINES

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


@pytest.mark.parametrize("engine", ENGINES)
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


def _kill_while_learning_then_compare(deployment, tmp_path) -> None:
    outcomes = MarketSimulator(seed=5, keys=KEYS, change_points=[15_000]).outcomes(N_OUTCOMES)
    producer = deployment.producer()
    producer.send_outcomes(outcomes)
    producer.flush()

    def applied_total() -> int:
        return sum(offset + 1 for offset in deployment.applied_offsets().values())

    rng = random.Random(20261122)
    targets = sorted(rng.uniform(0.05, 0.5) * N_OUTCOMES for _ in range(KILLS))
    kill_log = []
    worker = deployment.worker(tmp_path).start()
    for target in targets:
        deployment.wait_for(lambda t=target: applied_total() >= t, 120, f"progress {target:.0f}")
        time.sleep(rng.uniform(0.0, 0.3))  # land anywhere inside a batch or a checkpoint
        before = applied_total()
        worker.kill9()
        kill_log.append(before)
        assert before < N_OUTCOMES, "the worker finished before it could be killed"
        worker = deployment.worker(tmp_path).start()
    deployment.wait_for(lambda: applied_total() == N_OUTCOMES, 180, "the whole stream applied")
    worker.stop()

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
