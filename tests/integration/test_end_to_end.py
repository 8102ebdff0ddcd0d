"""End to end on the real broker and Redis: requests in, exactly one signal out each."""

from __future__ import annotations

import math

import orjson
import pytest

from app.composition import contract_spec
from app.train import train_and_store
from models.market import MarketSimulator
from streams.client import Endpoint, SignalClient
from streams.partitioning import partition_for
from streams.reader import read_topic
from tests.integration.infra import ENGINES
from tests.schema_check import assert_valid

N_OUTCOMES = 3000
M_REQUESTS = 800
KEYS = tuple(f"SYM{i}" for i in range(6))


@pytest.mark.parametrize("engine", ENGINES)
def test_every_request_gets_exactly_one_signal_with_visible_parts(deploy, tmp_path, engine):
    deployment = deploy(
        model={"key_field": "key"}, online={"min_updates": 20}, processing={"engine": engine}
    )
    _run_end_to_end(deployment, tmp_path)


@pytest.mark.parametrize("engine", ENGINES)
def test_end_to_end_secured(deploy_secured, tls_broker, secured_redis, tmp_path, engine):
    """The same run with every Kafka client (worker, producers, readers, admin) on a broker
    that only speaks TLS, and every Redis client on a Redis that only speaks TLS and only to
    an ACL user with a password, both checked against the test CA with hostname verification.
    The worker logs at DEBUG (libraries included); no line of it, and no output of ``status``,
    shows the password."""
    deployment = deploy_secured(
        model={"key_field": "key"},
        online={"min_updates": 20},
        processing={"engine": engine},
        log={"level": "DEBUG"},
    )
    assert deployment.endpoints.kafka.security_protocol == "SSL"
    assert deployment.endpoints.redis.tls and deployment.endpoints.redis.password
    brokered, stored = tls_broker.proxy.connections, secured_redis.proxy.connections
    _run_end_to_end(deployment, tmp_path)
    assert tls_broker.proxy.connections > brokered  # the clients really went through TLS
    assert secured_redis.proxy.connections > stored

    status = deployment.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    assert orjson.loads(status.stdout)["partitions"]
    password = deployment.endpoints.redis.password
    worker_log = deployment.workers[0].log_path.read_text(errors="replace")
    assert '"level": "DEBUG"' in worker_log or '"level":"DEBUG"' in worker_log  # it did log
    for where, text in (("worker log", worker_log), ("status", status.stdout + status.stderr)):
        assert password not in text, f"the Redis password appears in the {where}"


def test_end_to_end_on_redis_cluster(deploy_cluster, tmp_path):
    """The same run with all state in a three-master Redis Cluster: partition states,
    registry and coordination keys on whichever node owns their slot, reached through
    redis-py's cluster clients by the worker, the CLI and the test alike."""
    deployment = deploy_cluster(
        model={"key_field": "key"}, online={"min_updates": 20}, topics={"partitions": 4}
    )
    assert deployment.endpoints.redis.cluster
    _run_end_to_end(deployment, tmp_path)


def test_a_wrong_password_is_refused_without_showing_it(deploy_secured):
    """A bad credential is a one-line error; neither the given nor the real password shows,
    also when the wrong one is written inside the URL."""
    deployment = deploy_secured()
    redis = deployment.endpoints.redis
    wrong = "wrong-" + redis.password
    for env in (
        {"STREAMLEARN_REDIS__PASSWORD": wrong},
        {
            "STREAMLEARN_REDIS__PASSWORD": "",
            "REDIS_URL": redis.url.replace("://", f"://{redis.username}:{wrong}@"),
        },
    ):
        run = deployment.cli("models", "list", env=env)
        assert run.returncode != 0
        assert "invalid username-password pair" in run.stderr or "WRONGPASS" in run.stderr, (
            run.stderr
        )
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert wrong not in run.stderr + run.stdout
        assert redis.password not in run.stderr + run.stdout


def _run_end_to_end(deployment, tmp_path) -> None:
    sim = MarketSimulator(seed=11, keys=KEYS)
    client = deployment.endpoints.redis.client()
    version, _ = train_and_store(
        deployment.settings, sim.frame(3000), "test", client, verbose=False
    )
    producer = deployment.producer()
    producer.send_outcomes(sim.outcomes(N_OUTCOMES))
    requests = sim.requests(M_REQUESTS)
    producer.send_requests(requests)
    producer.flush()

    deployment.worker(tmp_path).start()
    names = deployment.names
    deployment.wait_for(
        lambda: len(deployment.read(names.signals)) >= M_REQUESTS, 90, "all signals"
    )
    deployment.wait_for(
        lambda: sum(m.updates for m in deployment.key_models().values()) == N_OUTCOMES,
        30,
        "all outcomes checkpointed",
    )

    signals = deployment.read(names.signals)
    assert len(signals) == M_REQUESTS
    assert assert_valid("signal", signals) == M_REQUESTS  # every signal follows its schema
    ids = [s["request_id"] for s in signals]
    assert len(set(ids)) == len(ids), "duplicate signals"
    assert set(ids) == {r["request_id"] for r in requests}
    for signal in signals:
        assert signal["status"] in {"ok", "batch_only"}
        parts = signal["w_batch"] * (signal["p_batch"] or 0.0) + signal["w_online"] * (
            signal["p_online"] or 0.0
        )
        assert math.isclose(signal["score"], parts, abs_tol=1e-9)
        assert math.isclose(signal["w_batch"] + signal["w_online"], 1.0)
        assert signal["batch_version"] == version
        if signal["status"] == "ok":
            assert (signal["w_batch"], signal["w_online"]) == (0.8, 0.2)
            assert signal["online_updates"] >= 20
        else:
            assert signal["p_online"] is None and "min_updates" in signal["reason"]
    by_request = {r["request_id"]: r for r in requests}
    assert all(s["key"] == by_request[s["request_id"]]["key"] for s in signals)
    # Signals are keyed by model key and placed where Kafka's default partitioner puts the key.
    partitions = list(range(deployment.settings.topics.partitions))
    placed = read_topic(deployment.endpoints.kafka, names.signals)
    assert len(placed) == M_REQUESTS
    assert all(r.partition == partition_for(r.key, partitions) for r in placed)

    models = deployment.key_models()
    assert set(models) == set(KEYS)
    assert all(m.metrics.sources["batch"].n == m.updates for m in models.values())
    assert deployment.read(names.outcomes_dead_letter) == []
    assert deployment.read(names.requests_dead_letter) == []

    # `streamlearn status` sees the same deployment: active version, every key, no lag.
    shown = deployment.cli("status", "--json", check=True)
    status = orjson.loads(shown.stdout)
    assert status["active_batch_version"] == version
    assert set(status["keys"]) == set(KEYS)
    assert sum(k["updates"] for k in status["keys"].values()) == N_OUTCOMES
    assert all(row["lag"] == 0 for row in status["partitions"].values())
    assert sum(row["end_offset"] for row in status["requests"].values()) == M_REQUESTS
    human = deployment.cli("status", check=True).stdout
    assert version in human and "SYM0" in human

    # The client library on the same connection settings (TLS, SASL, a cluster: as the worker).
    endpoint = Endpoint(deployment.endpoints.kafka, names, contract_spec(deployment.settings))
    with SignalClient(endpoint, timeout_s=60.0) as client:
        answers = [client.request(r["key"], r["features"]) for r in sim.requests(3)]
    assert [a.status for a in answers] == ["ok"] * 3
    assert all(a.batch_version == version for a in answers)
