"""Drift on the real broker and Redis: one alert, one retrain, a promotion, a recovery; and
exactly one alert even when the worker is killed between deciding it and publishing it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.train import train_and_store
from app.worker import worker_environment
from models.market import MarketSimulator

HISTORY, BEFORE_FLIP = 20_000, 10_000


def _champion(deployment, sim) -> str:
    client = deployment.endpoints.redis.client()
    version, _ = train_and_store(
        deployment.settings, sim.frame(HISTORY), "A", client, verbose=False
    )
    return version


def _active(deployment) -> str:
    return deployment.registry().active()


def _blend(deployment) -> tuple[float, float]:
    """Blend source (n, correct) of the global key, as checkpointed."""
    source = deployment.key_models()["global"].metrics.sources["blend"]
    return source.n, source.correct


def test_a_regime_flip_gives_one_alert_one_retrain_a_promotion_and_a_recovery(deploy, tmp_path):
    deployment = deploy(
        topics={"partitions": 1},
        retrain={"cooldown_s": 0.0, "bootstrap_resamples": 500},
        drift={"retrain_delay_outcomes": 2000, "retrain_min_window": 2000},
    )
    names = deployment.names
    sim = MarketSimulator(seed=31, change_points=[HISTORY + BEFORE_FLIP])
    champion = _champion(deployment, sim)
    producer = deployment.producer()
    producer.send_outcomes(sim.outcomes(BEFORE_FLIP + 4000))  # the flip, then 4,000 more
    producer.flush()
    deployment.worker(tmp_path).start()
    retrainer = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "retrainer"],
        env=worker_environment(deployment.settings, deployment.endpoints),
        stdout=open(tmp_path / "retrainer.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    try:
        deployment.wait_for(lambda: _active(deployment) != champion, 120, "a promotion")
        promoted = _active(deployment)
        deployment.wait_for(
            lambda: deployment.applied_offsets()[0] == BEFORE_FLIP + 4000 - 1, 60, "caught up"
        )
        n0, correct0 = _blend(deployment)
        producer.send_outcomes(sim.outcomes(8000))  # the new regime goes on
        producer.flush()
        total = BEFORE_FLIP + 12_000
        deployment.wait_for(lambda: deployment.applied_offsets()[0] == total - 1, 60, "all")
        deployment.wait_for(
            lambda: any(
                a["event"] == "recovery" and a["kind"] == "concept"
                for a in deployment.read(names.drift_alerts)
            ),
            30,
            "the concept recovery",
        )
    finally:
        retrainer.terminate()
        retrainer.wait(timeout=30)

    alerts = deployment.read(names.drift_alerts)
    concept = [a for a in alerts if a["kind"] == "concept"]
    assert [a["event"] for a in concept] == ["alert", "recovery"]
    alert = concept[0]
    assert alert["source"] == "batch" and alert["action"] == "retrain_scheduled"
    assert alert["model_version"] == champion
    assert BEFORE_FLIP < alert["at_outcome"] <= BEFORE_FLIP + 1000
    assert concept[1]["model_version"] == promoted
    assert len({a["alert_id"] for a in alerts}) == len(alerts)
    requests = deployment.read(names.retrain_requests)
    assert len(requests) == 1 and requests[0]["requested_by"] == "drift-detector"
    updates = deployment.read(names.model_updates)
    assert [u["event"] for u in updates] == ["activated"]
    assert updates[0]["version"] == promoted and updates[0]["gate"]["promote"]

    n1, correct1 = _blend(deployment)
    after = (correct1 - correct0) / (n1 - n0)
    stale = deployment.key_models()["global"]  # numbers for the note
    print(f"blend accuracy over the 8,000 outcomes after promotion: {after:.3f}")
    print(f"alerts: {[(a['kind'], a['event'], a['at_outcome']) for a in alerts]}")
    assert after > 0.65, "blended accuracy recovers after the promotion"
    assert stale.updates == total

    tail = deployment.cli("alerts", "tail", "--no-follow", check=True).stdout.splitlines()
    assert len(tail) == len(alerts) and "ALERT    concept/batch" in tail[0]
    report = deployment.cli("drift", "report", check=True).stdout
    assert "concept/batch" in report and "data       PSI" in report and "vol_20" in report


@pytest.mark.parametrize(
    ("failpoint", "engine"),
    [
        ("before-outbox-publish", "faust"),
        ("after-outbox-publish", "faust"),
        ("after-outbox-publish", "aiokafka"),
    ],
)
def test_kill_between_drift_and_alert_publishes_exactly_one_alert(
    deploy, tmp_path, failpoint, engine
):
    deployment = deploy(
        topics={"partitions": 1},
        drift={"kinds": "concept", "retrain_on": ""},
        processing={"engine": engine},
    )
    names = deployment.names
    sim = MarketSimulator(seed=37, change_points=[HISTORY + BEFORE_FLIP])
    _champion(deployment, sim)
    producer = deployment.producer()
    producer.send_outcomes(sim.outcomes(BEFORE_FLIP + 5000))
    producer.flush()
    marker = tmp_path / "fired"
    crashing = deployment.worker(tmp_path).start(STREAMLEARN_FAILPOINTS=f"{failpoint}@{marker}")
    deployment.wait_for(lambda: not crashing.alive(), 90, "the failpoint to kill the worker")
    assert marker.exists(), "the worker died, but not at the failpoint"
    deployment.worker(tmp_path).start(STREAMLEARN_FAILPOINTS=f"{failpoint}@{marker}")
    deployment.wait_for(
        lambda: deployment.applied_offsets()[0] == BEFORE_FLIP + 5000 - 1, 90, "all applied"
    )
    deployment.wait_for(lambda: not deployment.key_models()["global"].outbox, 30, "outbox empty")
    alerts = deployment.read(names.drift_alerts)
    assert [(a["kind"], a["event"]) for a in alerts] == [("concept", "alert")]
