"""Workers on several "hosts": no directory shared, the model store and its journal on S3.

Two workers run in working directories of their own, a third directory is the operator's
(training, promotion, rollback through the CLI), a fourth a fresh machine that rebuilds the
registry. Nothing but the broker, Redis and the S3 bucket is shared; a local directory named
``model-store`` appearing anywhere would mean some process fell back to a host's disk.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import orjson

from app.embedded import free_port
from models.market import MarketSimulator
from models.registry import RegistryState

SWITCH_LIMIT_S = 5.0


def _status(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as response:
        return orjson.loads(response.read())


def _statuses(ports: list[int]) -> list[dict] | None:
    try:
        return [_status(port) for port in ports]
    except OSError:
        return None


def test_two_hosts_follow_promotions_and_rollbacks_made_from_a_third(deploy, s3, tmp_path):
    bucket = s3.new_bucket()
    deployment = deploy(
        batch={"store": f"s3://{bucket}/prod", "s3_endpoint_url": s3.endpoint_url},
        processing={"engine": "aiokafka"},
    )
    hosts = {name: tmp_path / f"host-{name}" for name in ("a", "b", "ops", "fresh")}
    for directory in hosts.values():
        directory.mkdir()
    partitions = set(range(deployment.settings.topics.partitions))

    # The operator trains two versions from a file on their own machine; the first goes active.
    sim = MarketSimulator(seed=5)
    sim.frame(3000).to_parquet(hosts["ops"] / "history.parquet")
    first = deployment.cli("train", "--from-file", "history.parquet", cwd=hosts["ops"])
    assert first.returncode == 0, first.stderr
    MarketSimulator(seed=6).frame(3000).to_parquet(hosts["ops"] / "recent.parquet")
    second = deployment.cli(
        "train", "--from-file", "recent.parquet", "--no-activate", cwd=hosts["ops"]
    )
    assert second.returncode == 0, second.stderr
    registry = deployment.registry()
    assert registry.store.location == f"s3://{bucket}/prod/"
    v1 = registry.active()
    v2 = next(v for v in registry.store.versions() if v != v1)

    ports = [free_port(), free_port()]
    for name, port in zip(("a", "b"), ports, strict=True):
        deployment.worker(tmp_path, cwd=hosts[name]).start(
            STREAMLEARN_WEB__ENABLED="true", STREAMLEARN_WEB__PORT=str(port)
        )

    def split_and_on(version: str) -> bool:
        found = _statuses(ports)
        if found is None:
            return False
        held = [set(map(int, status["partitions"])) for status in found]
        return (
            all(held)
            and set().union(*held) == partitions
            and all(status["batch_version"] == version for status in found)
        )

    deployment.wait_for(lambda: split_and_on(v1), 90, "both workers holding partitions on v1")

    producer = deployment.producer()
    sent = 0

    def every_partition_scores_with(version: str) -> None:
        nonlocal sent
        requests = sim.requests(40)
        producer.send_requests(requests)
        producer.flush()
        sent += len(requests)
        deployment.wait_for(
            lambda: len(deployment.read(deployment.names.signals)) >= sent, 30, "signals"
        )
        ids = {r["request_id"] for r in requests}
        fresh = [s for s in deployment.read(deployment.names.signals) if s["request_id"] in ids]
        assert {s["batch_version"] for s in fresh} == {version}

    every_partition_scores_with(v1)
    for action, target in (("promote", v2), ("rollback", v1)):
        started = time.monotonic()
        changed = deployment.cli("models", action, target, cwd=hosts["ops"])
        assert changed.returncode == 0, changed.stderr
        deployment.wait_for(lambda t=target: split_and_on(t), SWITCH_LIMIT_S, f"{action} {target}")
        switched_s = time.monotonic() - started
        assert switched_s < SWITCH_LIMIT_S
        print(f"{action} {target}: both workers on it {switched_s:.2f}s after the command began")
        every_partition_scores_with(target)

    # Redis loses the registry; a fresh machine rebuilds it from the journal on S3.
    before = registry.state()
    assert [e.action for e in before.history] == ["activate", "activate", "rollback"]
    registry.backend.replace(RegistryState())
    rebuilt = deployment.cli("models", "rebuild", cwd=hosts["fresh"])
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert registry.state() == before

    # Pointed at a local directory by mistake, a rebuild finds an empty journal and refuses
    # to touch the live registry.
    local = deployment.cli(
        "models", "rebuild", env={"STREAMLEARN_BATCH__STORE": "model-store"}, cwd=hosts["fresh"]
    )
    assert local.returncode != 0
    assert "lacks" in local.stderr and len(local.stderr.strip().splitlines()) == 1
    assert registry.state() == before

    for worker in deployment.workers:
        assert worker.alive()
    for directory in hosts.values():
        assert not (directory / "model-store").exists(), f"{directory} used a local store"
    assert not Path("model-store").exists()
