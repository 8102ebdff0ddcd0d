"""The retrainer on the real broker and Redis: burst -> one retrain -> gate -> promote or reject."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request

import orjson
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from app.embedded import Endpoints, free_port
from app.retrainer import Retrainer
from app.train import train_and_store
from app.worker import worker_environment
from models.market import MarketSimulator
from streams.contracts import RetrainRequest
from streams.retrain_requests import enqueue_retrain, retrain_request

WINDOW = 20_000
RETRAIN = {"window_outcomes": WINDOW, "bootstrap_resamples": 500, "cooldown_s": 60.0}


def _start(deployment, tmp_path, command: str, name: str) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed by the OS at exit
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", command],
        env=worker_environment(deployment.settings, deployment.endpoints),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def test_a_burst_of_requests_after_a_regime_flip_yields_one_promoted_model(deploy, tmp_path):
    metrics_port = free_port()
    deployment = deploy(
        retrain={**RETRAIN, "metrics_port": metrics_port}, online={"min_updates": 0}
    )
    names = deployment.names
    sim = MarketSimulator(seed=13, change_points=[WINDOW])
    client = deployment.endpoints.redis.client()
    champion, _ = train_and_store(
        deployment.settings, sim.frame(WINDOW), "momentum", client, verbose=False
    )
    producer = deployment.producer()
    producer.send_outcomes(sim.outcomes(WINDOW))  # the market has flipped: mean reversion
    producer.flush()
    deployment.worker(tmp_path).start()
    retrainer = _start(deployment, tmp_path, "retrainer", "retrainer")
    try:
        for i in range(5):  # an alert storm: five requests at once
            enqueue_retrain(
                deployment.endpoints.kafka,
                names.retrain_requests,
                retrain_request("test", f"alert {i}"),
            )
        registry = deployment.registry()
        deployment.wait_for(lambda: registry.active() != champion, 120, "a promotion")
        time.sleep(3)  # give any (wrong) second retrain the time to show up
        challenger = registry.active()
        updates = deployment.read(names.model_updates)
        assert [u["event"] for u in updates] == ["activated"]
        assert updates[0]["version"] == challenger and updates[0]["previous"] == champion
        assert updates[0]["gate"]["promote"] is True
        store = registry.store
        assert set(store.versions()) == {champion, challenger}
        meta = store.metadata(challenger)
        assert meta["parent_version"] == champion
        assert meta["gate"]["challenger"]["log_loss"] < meta["gate"]["champion"]["log_loss"]
        assert meta["window"]["rows"] == WINDOW
        assert 1 <= len(meta["requests"]) <= 5

        # Prometheus sees it: one activated retrain, this retrainer leading.
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            scraped = {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(response.read().decode())
                for sample in family.samples
            }
        assert scraped[("streamlearn_retrains_total", (("outcome", "activated"),))] == 1
        assert scraped[("streamlearn_retrains_total", (("outcome", "failed"),))] == 0
        assert scraped[("streamlearn_retrainer_leader", ())] == 1
        assert scraped[("streamlearn_retrain_window_rows", ())] == WINDOW
        assert scraped[("streamlearn_retrain_seconds_count", ())] == 1

        # Workers score with the promoted model within seconds.
        producer.send_requests(sim.requests(50))
        producer.flush()
        deployment.wait_for(
            lambda: {s["batch_version"] for s in deployment.read(names.signals)} == {challenger},
            30,
            "signals from the promoted model",
        )
    finally:
        retrainer.terminate()
        assert retrainer.wait(timeout=30) == 0


def test_an_equal_challenger_is_rejected_and_recorded(deploy, tmp_path):
    deployment = deploy(
        retrain={**RETRAIN, "cooldown_s": 0.0, "warm_start": True},
        tracking={"mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "equal"},
    )
    sim = MarketSimulator(seed=17)  # stationary
    producer = deployment.producer()
    producer.send_outcomes(sim.outcomes(WINDOW))
    producer.flush()
    retrainer = Retrainer(
        deployment.settings,
        Endpoints(deployment.endpoints.kafka, deployment.endpoints.redis),
        out=open(tmp_path / "retrainer.log", "w"),  # noqa: SIM115
    )
    request = RetrainRequest("r1", "test", "first", 0, WINDOW, None, False)
    first = retrainer.retrain([request])
    assert first.action == "activated" and "base-rate predictor" in first.decision.reason
    producer.send_outcomes(sim.outcomes(WINDOW))  # fresh data, same market
    producer.flush()
    second = retrainer.retrain([request])
    assert second.action == "rejected"
    assert retrainer.registry.active() == first.version
    meta = retrainer.store.metadata(second.version)
    assert meta["gate"]["promote"] is False
    assert meta["gate"]["reason"].startswith("rejected:")
    updates = deployment.read(deployment.names.model_updates)
    assert [u["event"] for u in updates] == ["activated", "rejected"]
    assert updates[1]["reason"] == meta["gate"]["reason"]
    # the fresh window does not overlap the champion's: no warm start, and the reason
    assert meta["warm_start"] == {
        "used": False,
        "reason": "the windows do not overlap",
        "rounds": meta["model"]["rounds"],
    }
    # each retrain is an MLflow run, linked both ways with its version
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(meta["tracking"]["run_id"])
    assert run.data.tags["streamlearn.version"] == second.version
    assert run.data.tags["streamlearn.action"] == "rejected"
    assert run.data.params["family"] == "xgboost"
    assert run.data.params["parent_version"] == first.version
    assert run.data.metrics["holdout.log_loss"] == meta["gate"]["challenger"]["log_loss"]
    experiment = client.get_experiment_by_name("equal")
    assert len(client.search_runs([experiment.experiment_id])) == 2
    # a rejected version is not promoted by accident; compare shows why, --force overrides
    refused = deployment.cli("models", "promote", second.version)
    assert refused.returncode != 0 and "rejected by the gate" in refused.stderr
    assert retrainer.registry.active() == first.version
    shown = deployment.cli("models", "show", second.version, check=True).stdout
    assert "gate                         rejected" in shown and "mean |SHAP|" in shown
    compared = deployment.cli("models", "compare", first.version, second.version, check=True)
    assert "* gate" in compared.stdout and "* window to" in compared.stdout
    assert "  family" in compared.stdout  # the same family on both sides: no mark
    forced = deployment.cli("models", "promote", second.version, "--force", check=True)
    assert forced.returncode == 0
    assert retrainer.registry.active() == second.version
    assert "forced past the gate" in retrainer.registry.state().history[-1].reason


def _run_in_thread(retrainer: Retrainer) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=retrainer.run, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


def _retrains_by(deployment, requested_by: str) -> list[str]:
    """Stored versions trained for a request from ``requested_by``."""
    store = deployment.registry().store
    return [
        v
        for v in store.versions()
        if requested_by in {r["requested_by"] for r in store.metadata(v).get("requests", [])}
    ]


def test_schedule_and_volume_triggers_retrain_through_the_gate(deploy, tmp_path):
    """A short-interval schedule fires on its own; a volume trigger after N new outcomes
    (counted from where the last retrain read, kept in Redis across retrainers)."""
    small = {
        "window_outcomes": 2000,
        "bootstrap_resamples": 100,
        "num_boost_round": 30,
        "blend_folds": 0,
        "cooldown_s": 0.0,
        "trigger_check_s": 0.2,
        "poll_interval_s": 0.2,
        "metrics_port": 0,
    }
    deployment = deploy(retrain={**small, "schedule": "2s"})
    sim = MarketSimulator(seed=23)
    producer = deployment.producer()
    producer.send_outcomes(sim.outcomes(2000))
    producer.flush()
    endpoints = Endpoints(deployment.endpoints.kafka, deployment.endpoints.redis)
    log = open(tmp_path / "retrainer.log", "w")  # noqa: SIM115
    scheduled = Retrainer(deployment.settings, endpoints, out=log)
    thread, stop = _run_in_thread(scheduled)
    try:
        deployment.wait_for(lambda: _retrains_by(deployment, "schedule"), 60, "a scheduled retrain")
    finally:
        stop.set()
        thread.join(timeout=60)
    fired = scheduled.metrics.registry.get_sample_value(
        "streamlearn_retrain_triggers_total", {"trigger": "schedule"}
    )
    assert fired is not None and fired >= 1
    requests = deployment.read(deployment.names.retrain_requests)
    assert {r["requested_by"] for r in requests} == {"schedule"}
    assert _retrains_by(deployment, "volume") == []

    by_volume = deployment.settings.with_overrides(
        retrain={**small, "every_outcomes": 1500, "schedule": None}
    )
    volume = Retrainer(by_volume, endpoints, out=log)
    thread, stop = _run_in_thread(volume)
    try:
        time.sleep(1.0)  # it looks: 1,000 new outcomes are not enough
        producer.send_outcomes(sim.outcomes(1000))
        producer.flush()
        time.sleep(1.5)
        assert _retrains_by(deployment, "volume") == []
        producer.send_outcomes(sim.outcomes(500))
        producer.flush()
        deployment.wait_for(lambda: _retrains_by(deployment, "volume"), 60, "a volume retrain")
    finally:
        stop.set()
        thread.join(timeout=60)
    [version] = _retrains_by(deployment, "volume")
    meta = deployment.registry().store.metadata(version)
    assert meta["window"]["rows"] == 2000 and "gate" in meta
    [request] = meta["requests"]
    assert "1,500 new outcomes since the last retrain" in request["reason"]
    events = {u["version"]: u["event"] for u in deployment.read(deployment.names.model_updates)}
    assert events[version] in ("activated", "rejected")  # through the gate, announced


def test_a_staged_challenger_is_scored_live_and_promoted_on_live_evidence(deploy, tmp_path):
    n = 6000
    deployment = deploy(
        retrain={
            **RETRAIN,
            "window_outcomes": n,
            "promotion_mode": "manual",
            "cooldown_s": 0.0,
            "shadow_min_outcomes": 1000,
        },
        online={"min_updates": 0},
    )
    sim = MarketSimulator(seed=23, change_points=[n])
    client = deployment.endpoints.redis.client()
    champion, _ = train_and_store(
        deployment.settings, sim.frame(n), "momentum", client, verbose=False
    )
    producer = deployment.producer()
    producer.send_outcomes(sim.outcomes(n))  # the market flipped to mean reversion
    producer.flush()
    retrainer = Retrainer(
        deployment.settings,
        Endpoints(deployment.endpoints.kafka, deployment.endpoints.redis),
        out=open(tmp_path / "retrainer.log", "w"),  # noqa: SIM115
    )
    staged = retrainer.retrain([RetrainRequest("s", "test", "flip", 0, None, None, False)])
    assert staged.action == "staged"
    state = retrainer.registry.state()
    assert (state.active, state.staged) == (champion, staged.version)
    listed = orjson.loads(deployment.cli("models", "list", "--json", check=True).stdout)
    assert (listed["active"], listed["staged"]) == (champion, staged.version)
    row = next(r for r in listed["versions"] if r["version"] == staged.version)
    assert row["role"] == "staged" and row["gate"] == "passed" and row["requested_by"] == ["test"]
    assert row["rows"] == n and 0 < row["log_loss"] < 1
    # no live evidence yet: the live rule of the gate refuses the promotion
    refused = deployment.cli("models", "promote")
    assert refused.returncode != 0 and "0 live outcomes" in refused.stderr
    deployment.worker(tmp_path).start()
    producer.send_outcomes(sim.outcomes(2000))
    producer.flush()
    learned = lambda: sum(o + 1 for o in deployment.applied_offsets().values())  # noqa: E731
    deployment.wait_for(lambda: learned() == n + 2000, 90, "every outcome learned")
    shown = deployment.cli("models", "show", staged.version, "--json")
    assert shown.returncode == 0, shown.stderr
    live = orjson.loads(shown.stdout)["live"]
    # every outcome the learners applied was scored by the staged version and the champion
    assert live["version"] == staged.version and live["outcomes"] == live["paired"] == n + 2000
    assert live["staged"]["log_loss"] < live["champion"]["log_loss"]
    assert live["improvement"]["better"] is True
    text = deployment.cli("models", "show", staged.version, check=True).stdout.splitlines()
    holdout = next(i for i, line in enumerate(text) if "holdout log_loss" in line)
    assert "live log_loss" in text[holdout + 1] and "(champion " in text[holdout + 1]
    promoted = deployment.cli("models", "promote")
    assert promoted.returncode == 0, promoted.stderr
    assert retrainer.registry.active() == staged.version
    assert "live: 8,000 outcomes" in retrainer.registry.state().history[-1].reason
    listing = deployment.cli("models", "list", check=True).stdout
    assert f"* {staged.version}" in listing
    shown = orjson.loads(deployment.cli("models", "show", staged.version, "--json").stdout)
    assert (shown["version"], shown["role"]) == (staged.version, "active")
    assert shown["metadata"]["requests"][0]["request_id"] == "s"
    events = [u["event"] for u in deployment.read(deployment.names.model_updates)]
    assert events == ["staged", "activated"]
