"""Drift on the real broker and Redis: one alert, one retrain, a promotion, a recovery; and
exactly one alert even when the worker is killed between deciding it and publishing it."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.browser import HeadlessChromium, chromium_binary
from app.embedded import free_port
from app.train import train_and_store
from app.worker import worker_environment
from models.market import MarketSimulator
from tests.schema_check import assert_valid

HISTORY, BEFORE_FLIP = 20_000, 10_000
DASHBOARD_TOKEN = "dash-t0ken"


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


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample of a ``/metrics`` page by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _values(samples: dict, name: str) -> dict[tuple, float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def test_a_regime_flip_gives_one_alert_one_retrain_a_promotion_and_a_recovery(deploy, tmp_path):
    web_port, retrainer_port, dashboard_port = free_port(), free_port(), free_port()
    deployment = deploy(
        topics={"partitions": 1},
        retrain={"cooldown_s": 0.0, "bootstrap_resamples": 500, "metrics_port": retrainer_port},
        drift={"retrain_delay_outcomes": 2000, "retrain_min_window": 2000},
        web={"enabled": True, "port": web_port},
        dashboard={"port": dashboard_port, "interval_s": 0.25, "token": DASHBOARD_TOKEN},
    )
    names = deployment.names
    sim = MarketSimulator(seed=31, change_points=[HISTORY + BEFORE_FLIP])
    champion = _champion(deployment, sim)
    producer = deployment.producer()
    producer.send_outcomes(sim.outcomes(BEFORE_FLIP + 4000))  # the flip, then 4,000 more
    producer.flush()
    deployment.worker(tmp_path).start()
    retrainer, dashboard = (
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", command],
            env=worker_environment(deployment.settings, deployment.endpoints),
            stdout=open(tmp_path / f"{command}.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        for command in ("retrainer", "dashboard")
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
        requests = sim.requests(50)
        for request in requests:  # a trading system stamps its requests with its clock
            request["ts"] = time.time_ns() // 1_000_000
        producer.send_requests(requests)
        producer.send_raw(names.outcomes, b"global", b"not json")
        producer.flush()
        deployment.wait_for(
            lambda: (
                len(deployment.read(names.signals)) == 50
                and deployment.applied_offsets()[0] == total
            ),
            30,
            "signals and the dead letter",
        )
        worker_metrics = _scrape(web_port)
        retrainer_metrics = _scrape(retrainer_port)
        page = _dashboard_seen(dashboard_port, promoted, total, tmp_path)
    finally:
        for process in (retrainer, dashboard):
            process.terminate()
            process.wait(timeout=30)

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
    # Every control message of the run follows its published schema.
    assert assert_valid("drift-alert", alerts) == len(alerts)
    assert assert_valid("retrain-request", requests) == 1
    assert assert_valid("model-update", updates) == 1
    assert assert_valid("signal", deployment.read(names.signals)) > 0

    n1, correct1 = _blend(deployment)
    after = (correct1 - correct0) / (n1 - n0)
    stale = deployment.key_models()["global"]  # numbers for the note
    print(f"blend accuracy over the 8,000 outcomes after promotion: {after:.3f}")
    print(f"alerts: {[(a['kind'], a['event'], a['at_outcome']) for a in alerts]}")
    assert after > 0.65, "blended accuracy recovers after the promotion"
    assert stale.updates == total

    _assert_metrics(worker_metrics, retrainer_metrics, deployment, promoted, total)

    tail = deployment.cli("alerts", "tail", "--no-follow", check=True).stdout.splitlines()
    assert len(tail) == len(alerts) and "ALERT    concept/batch" in tail[0]
    report = deployment.cli("drift", "report", check=True).stdout
    assert "concept/batch" in report and "data       PSI" in report and "vol_20" in report
    raw = deployment.cli("alerts", "tail", "--no-follow", "--json", check=True).stdout
    assert [orjson.loads(line)["alert_id"] for line in raw.splitlines()] == [
        a["alert_id"] for a in alerts
    ]
    drift = orjson.loads(deployment.cli("drift", "report", "--json", check=True).stdout)
    assert drift["global"]["outcomes"] == total + 0  # the dead letter is not an outcome
    assert drift["global"]["concept"]["batch"]["episode"]["state"] == "ok"
    assert len(drift["global"]["last_alerts"]) == min(5, len(alerts))
    status = orjson.loads(deployment.cli("status", "--json", check=True).stdout)
    assert status["active_batch_version"] == promoted
    assert status["partitions"]["0"] == {
        "applied_offset": total,
        "end_offset": total + 1,
        "lag": 0,
        "keys": 1,
    }
    assert status["keys"]["global"]["updates"] == total
    _assert_page(page, promoted)


def _dashboard_view(port: int, token: str | None = DASHBOARD_TOKEN) -> dict:
    query = f"?token={token}" if token else ""
    url = f"http://127.0.0.1:{port}/api/dashboard{query}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return orjson.loads(response.read())


def _dashboard_seen(port: int, promoted: str, total: int, tmp_path) -> dict | None:
    """The dashboard's JSON once it caught up, then (where Chromium is installed) the page as
    a browser renders it: what it shows, and that it changes without a reload."""
    with pytest.raises(urllib.error.HTTPError, match="401"):
        _dashboard_view(port, token=None)  # a token is set: nothing without it
    deadline = time.monotonic() + 30
    while True:
        view = _dashboard_view(port)
        done = {"alert", "recovery", "activated"} <= {e["event"] for e in view["events"]}
        if done and view["totals"]["outcomes"] == total and view["lag"]["outcomes"] == 0:
            break
        assert time.monotonic() < deadline, f"the dashboard did not catch up: {view}"
        time.sleep(0.25)
    assert view["error"] is None and view["registry"]["active"] == promoted
    assert view["keys"] == ["all", "global"] and len(view["series"]["t"]) >= 2
    assert [r["role"] for r in view["registry"]["versions"]].count("active") == 1
    concept = [e for e in view["events"] if e["kind"] == "concept"]
    assert [e["event"] for e in concept] == ["recovery", "alert"]  # newest first
    assert max(v for v in view["deployment"]["latency_ms"]["max"] if v is not None) < 30_000
    binary = chromium_binary()
    if binary is None:
        return None
    url = f"http://127.0.0.1:{port}/?token={DASHBOARD_TOKEN}"
    with HeadlessChromium(binary) as browser:
        browser.open(url)
        browser.wait_for("window.streamlearn && streamlearn.updates >= 1", 30, "a first update")
        browser.evaluate("window.sameDocument = 'yes'")  # gone if the page reloaded
        first = browser.evaluate("streamlearn.updates")
        browser.wait_for(f"streamlearn.updates >= {first + 3}", 30, "three more updates")
        seen = browser.evaluate(
            """({
              same: window.sameDocument,
              updates: streamlearn.updates,
              points: streamlearn.points,
              error: streamlearn.error,
              active: document.getElementById("t-active").textContent,
              outcomes: document.getElementById("t-outcomes").textContent,
              events: [...document.querySelectorAll("#events tbody tr")].map(r => r.innerText),
              keys: [...document.querySelectorAll("#key option")].map(o => o.value),
              charts: document.querySelectorAll(".uplot canvas").length,
            })"""
        )
        browser.evaluate(
            "document.getElementById('key').value = 'global';"
            "document.getElementById('key').dispatchEvent(new Event('change'))"
        )
        browser.wait_for("streamlearn.key === 'global'", 10, "the global key's series")
        seen["screenshot"] = browser.screenshot(tmp_path / "dashboard.png").read_bytes()
    return seen


def _assert_page(page: dict | None, promoted: str) -> None:
    if page is None:
        pytest.skip(
            "Chromium is not installed (apt-get install chromium; `make test` installs it "
            "where apt-get exists): everything but the page in a browser was checked"
        )
    assert page["same"] == "yes" and page["updates"] >= 4, "live updates without a reload"
    assert page["error"] is None and page["points"] >= 2
    assert page["active"] == promoted
    assert int(page["outcomes"].replace(",", "")) >= 22_000
    assert any("recovery" in row and "concept/batch on global" in row for row in page["events"])
    assert any("activated" in row and promoted in row for row in page["events"])
    assert page["keys"] == ["all", "global"] and page["charts"] == 4
    png = page["screenshot"]
    assert png.startswith(b"\x89PNG") and len(png) > 20_000, "a drawn page, not a blank one"


def _assert_metrics(worker: dict, retrainer: dict, deployment, promoted: str, total: int) -> None:
    """Each metric ops need, scraped from the running worker and retrainer, is plausible."""
    names = deployment.names
    for source in ("online", "batch", "blend"):
        labels = (("source", source),)
        assert worker[("streamlearn_prequential_predictions_total", labels)] > 10_000, source
        assert 0.55 < worker[("streamlearn_prequential_accuracy_ratio", labels)] < 1, source
        assert 0.1 < worker[("streamlearn_prequential_log_loss", labels)] < 0.75, source
        key = (("model_key", "global"), ("source", source))
        assert 0.5 < worker[("streamlearn_key_recent_accuracy_ratio", key)] <= 1, source
    assert worker[("streamlearn_key_outcomes", (("model_key", "global"),))] == total
    assert worker[("streamlearn_outcomes_learned_total", ())] == total
    drift = _values(worker, "streamlearn_drift_statistic")
    assert {dict(labels)["kind"] for labels in drift} >= {"concept", "data", "label"}
    assert set(_values(worker, "streamlearn_drift_open_episodes")) == {
        (("kind", k),) for k in ("concept", "data", "prediction", "label")
    }
    assert (
        worker[("streamlearn_drift_alerts_total", (("event", "alert"), ("kind", "concept")))] == 1
    )
    lag = (("partition", "0"), ("topic", names.outcomes))
    assert worker[("streamlearn_consumer_lag", lag)] == 0
    assert (
        worker[("streamlearn_consumer_lag", (("partition", "0"), ("topic", names.requests)))] == 0
    )
    assert worker[("streamlearn_signal_latency_seconds_count", ())] == 50
    assert 0 < worker[("streamlearn_signal_latency_seconds_sum", ())] / 50 < 30
    assert list(_values(worker, "streamlearn_batch_model_info")) == [(("version", promoted),)]
    letters = (("reason", "not_json"), ("source_topic", names.outcomes))
    assert worker[("streamlearn_dead_letters_total", letters)] == 1
    assert worker[("streamlearn_checkpoint_seconds_count", ())] > 0
    assert ("streamlearn_dependency_errors_total", ()) not in worker  # a labelled family
    assert worker[("process_resident_memory_bytes", ())] > 50e6
    assert worker[("process_cpu_seconds_total", ())] > 1
    assert retrainer[("streamlearn_retrains_total", (("outcome", "activated"),))] == 1
    assert retrainer[("streamlearn_retrain_seconds_count", ())] == 1
    assert retrainer[("process_resident_memory_bytes", ())] > 50e6


#: Each failpoint once, on different engines (the outbox is the engines' shared code): both
#: failpoints on both engines cost ``make test`` 17 s more for the same property.
@pytest.mark.parametrize(
    ("failpoint", "engine"),
    [("before-outbox-publish", "faust"), ("after-outbox-publish", "aiokafka")],
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
