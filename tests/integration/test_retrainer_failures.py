"""The retrainer under failure: a failed retrain is announced and never crash-loops; a kill
mid-promotion leaves one consistent registry; a stale leader cannot promote."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from app.worker import worker_environment
from models.market import MarketSimulator
from streams.retrain_requests import enqueue_retrain, retrain_request

#: A short leader lease: the standby of a killed leader takes over after 4 s, not 60.
RETRAIN = {
    "bootstrap_resamples": 200,
    "cooldown_s": 0.0,
    "num_boost_round": 60,
    "leader_lease_s": 4.0,
}


def _retrainer(deployment, tmp_path, name: str, **env: str) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed by the OS at exit
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "retrainer"],
        env={**worker_environment(deployment.settings, deployment.endpoints), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _request(deployment, reason: str) -> None:
    enqueue_retrain(
        deployment.endpoints.kafka,
        deployment.names.retrain_requests,
        retrain_request("test", reason),
    )


def test_a_failed_retrain_is_announced_committed_and_the_retrainer_goes_on(deploy, tmp_path):
    deployment = deploy(retrain=RETRAIN)
    producer = deployment.producer()
    sim = MarketSimulator(seed=31)
    producer.send_outcomes(sim.outcomes(40))  # far too few rows to train on
    producer.flush()
    retrainer = _retrainer(deployment, tmp_path, "retrainer")
    try:
        _request(deployment, "too early")
        deployment.wait_for(
            lambda: any(
                u["event"] == "failed" for u in deployment.read(deployment.names.model_updates)
            ),
            60,
            "a failed event",
        )
        failed = deployment.read(deployment.names.model_updates)[0]
        assert failed["event"] == "failed" and failed["version"] is None
        assert failed["reason"] and len(failed["requests"]) == 1
        retrainer_state = deployment.retrainer_ports().state
        deployment.wait_for(
            lambda: retrainer_state.committed_offset() == 1,
            30,
            "the failed request committed",
        )
        assert retrainer.poll() is None, "the retrainer must not exit on a failed retrain"
        # It keeps serving: with enough data the next request trains and activates.
        producer.send_outcomes(sim.outcomes(3000))
        producer.flush()
        _request(deployment, "enough data now")
        registry = deployment.registry()
        deployment.wait_for(lambda: registry.active() is not None, 120, "an activation")
        events = [u["event"] for u in deployment.read(deployment.names.model_updates)]
        assert events == ["failed", "activated"]
        assert retrainer.poll() is None
    finally:
        retrainer.send_signal(signal.SIGTERM)
        assert retrainer.wait(timeout=30) == 0


@pytest.mark.parametrize("point", ["retrainer-before-promotion", "retrainer-after-promotion"])
def test_a_retrainer_killed_mid_promotion_leaves_one_consistent_registry(deploy, tmp_path, point):
    deployment = deploy(retrain=RETRAIN)
    producer = deployment.producer()
    sim = MarketSimulator(seed=33)
    producer.send_outcomes(sim.outcomes(2000))
    producer.flush()
    marker = tmp_path / "fired"
    first = _retrainer(deployment, tmp_path, "first", STREAMLEARN_FAILPOINTS=f"{point}@{marker}")
    _request(deployment, "kill me mid-promotion")
    assert first.wait(timeout=120) == -signal.SIGKILL and marker.exists()
    worker = deployment.worker(tmp_path).start()
    second = _retrainer(deployment, tmp_path, "second")
    registry = deployment.registry()
    try:
        # The request was not committed before the kill: the new leader serves it again. If
        # the first one got as far as activating, the gate sees an equal challenger and rejects
        # it; either way the request ends with exactly one decision announced by the second.
        deployment.wait_for(
            lambda: any(
                u["event"] in ("activated", "rejected")
                for u in deployment.read(deployment.names.model_updates)
            ),
            120,
            "a decision by the second retrainer",
        )
        events = [u["event"] for u in deployment.read(deployment.names.model_updates)]
        expected = ["activated"] if point == "retrainer-before-promotion" else ["rejected"]
        assert events == expected
        state = registry.state()
        active = state.active
        assert active is not None and registry.store.load(active)
        journal = [(e.action, e.version) for e in registry.journal.events()]
        assert journal == [(e.action, e.version) for e in state.history]
        producer.send_requests(sim.requests(40))
        producer.flush()
        deployment.wait_for(
            lambda: len(deployment.read(deployment.names.signals)) >= 40, 60, "signals"
        )
        versions = {s["batch_version"] for s in deployment.read(deployment.names.signals)[-20:]}
        assert versions == {registry.active()}, "every worker on the one active version"
        assert second.poll() is None and worker.alive()
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
