"""A worker's HTTP views on a fresh install: Prometheus can scrape it, health and readiness tell
the truth, including while Redis is unreachable."""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.embedded import free_port
from models.market import MarketSimulator
from tests.chaos.harness import ChaosRedis
from tests.integration.infra import ENGINES, make_deployment


def _get(port: int, path: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "")


def _wait_http(port: int, path: str, want: int, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            status, body, _ = _get(port, path)
            last = (status, body[:300])
            if status == want:
                return orjson.loads(body)
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} did not answer {want} within {timeout_s}s (last {last})")


@pytest.mark.parametrize("engine", ENGINES)
def test_metrics_scrape_and_truthful_health_through_a_redis_outage(endpoints, tmp_path, engine):
    chaos_redis = ChaosRedis(tmp_path)  # a Redis of its own: this test stops it
    chaos_redis.start()
    port = free_port()
    deployment = make_deployment(
        endpoints.__class__(endpoints.kafka, chaos_redis.url),
        tmp_path / "store",
        processing={"engine": engine},
        web={"enabled": True, "port": port},
        redis={"timeout_s": 0.5},
    )
    deployment.create_topics()
    try:
        producer = deployment.producer()
        sim = MarketSimulator(seed=41)
        producer.send_outcomes(sim.outcomes(300))
        producer.flush()
        deployment.worker(tmp_path).start()
        ready = _wait_http(port, "/ready", 200)
        assert ready["ok"] is True and ready["problems"] == {}

        status, body, content_type = _get(port, "/metrics")
        assert status == 200 and content_type.startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert "streamlearn_outcomes_learned" in families
        assert "streamlearn_state_store_available" in families
        health = _wait_http(port, "/health", 200)
        assert health["ok"] is True

        deployment.wait_for(
            lambda: sum(o + 1 for o in deployment.applied_offsets().values()) == 300,
            60,
            "the backlog learned",
        )
        assert chaos_redis.pid is not None
        os.kill(chaos_redis.pid, signal.SIGSTOP)
        try:
            down = _wait_http(port, "/ready", 503, timeout_s=30)
            assert "redis" in down["problems"], down
            assert _get(port, "/health")[0] == 200  # alive: it still scores
            producer.send_requests(sim.requests(20))
            producer.flush()
            deployment.wait_for(
                lambda: len(deployment.read(deployment.names.signals)) == 20, 30, "signals"
            )
            signals = deployment.read(deployment.names.signals)
            assert all(isinstance(s["score"], float) for s in signals), signals[0]
            assert all(s["degraded"] for s in signals)  # said out loud: pointer unreadable
        finally:
            os.kill(chaos_redis.pid, signal.SIGCONT)
        _wait_http(port, "/ready", 200, timeout_s=60)
        assert deployment.workers[0].alive()
    finally:
        deployment.close()
        chaos_redis.stop()
