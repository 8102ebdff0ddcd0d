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

from app.embedded import Endpoints, free_port
from app.redis_connection import RedisConnection
from models.market import MarketSimulator
from tests.chaos.harness import ChaosRedis
from tests.integration.infra import ENGINES, make_deployment


def _get(port: int, path: str, token: str | None = None) -> tuple[int, bytes, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
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
    """A worker started while Redis is paused comes up (not ready, saying why), becomes ready
    once Redis answers, and later keeps scoring through another pause."""
    chaos_redis = ChaosRedis(tmp_path)  # a Redis of its own: this test stops it
    chaos_redis.start()
    port = free_port()
    deployment = make_deployment(
        Endpoints(endpoints.kafka, RedisConnection(chaos_redis.url)),
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
        assert chaos_redis.pid is not None
        os.kill(chaos_redis.pid, signal.SIGSTOP)  # a worker started during an outage waits it out
        try:
            deployment.worker(tmp_path).start()
            starting = _wait_http(port, "/ready", 503, timeout_s=60)
            assert "redis" in starting["problems"], starting
        finally:
            os.kill(chaos_redis.pid, signal.SIGCONT)
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


def test_status_is_paged_and_behind_its_token(deploy, tmp_path):
    """``/status`` with ``web.status_token``: 401 without the token or with a wrong one; with
    it, the keys come in pages that together list each key exactly once."""
    port, token = free_port(), "status-token-" + os.urandom(6).hex()
    deployment = deploy(
        model={"key_field": "key"},
        web={"enabled": True, "port": port, "status_token": token, "status_page_size": 4},
    )
    keys = tuple(f"K{i:02d}" for i in range(11))
    producer = deployment.producer()
    producer.send_outcomes(MarketSimulator(seed=3, keys=keys).outcomes(400))
    producer.flush()
    deployment.worker(tmp_path).start()
    deployment.wait_for(
        lambda: sum(o + 1 for o in deployment.applied_offsets().values()) == 400, 60, "learning"
    )

    for given in (None, "wrong", token[:-1]):
        status, body, _ = _get(port, "/status", given)
        assert status == 401 and b"Bearer" in body
    deployment.wait_for(
        lambda: orjson.loads(_get(port, "/status", token)[1]).get("keys_total") == len(keys),
        30,
        "every key in memory",
    )
    seen, offset = [], 0
    while offset is not None:
        status, body, _ = _get(port, f"/status?offset={offset}", token)
        assert status == 200
        page = orjson.loads(body)
        assert len(page["keys"]) <= 4 and page["keys_total"] == len(keys)
        seen += list(page["keys"])
        offset = page["keys_next_offset"]
    assert seen == sorted(keys)
    status, body, _ = _get(port, "/status?offset=2&limit=3", token)
    assert list(orjson.loads(body)["keys"]) == list(keys[2:5])
    for bad in ("limit=0", "limit=x", "offset=-1", "limit=10001"):
        assert _get(port, f"/status?{bad}", token)[0] == 400
    assert _get(port, "/health")[0] == 200  # liveness stays open for orchestrators
    assert token not in deployment.workers[0].log_path.read_text()
