"""Workers follow the active batch model within seconds and refuse a broken one."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from app.composition import model_store
from app.train import train_and_store
from models.market import MarketSimulator
from models.registry import RegistryEvent
from models.store import MODEL_FILE


def test_new_version_is_picked_up_and_a_tampered_one_is_refused(deploy, tmp_path):
    deployment = deploy(topics={"partitions": 1}, online={"min_updates": 0})
    names = deployment.names
    sim = MarketSimulator(seed=4)
    client = deployment.endpoints.redis.client()
    backend = deployment.registry().backend

    def point_at(version: str) -> None:  # bypass the registry's own checksum check
        event = RegistryEvent("activate", version, None, "now", "test", "bypass the checks")
        backend.apply(event, None, lambda: None)

    v1, _ = train_and_store(deployment.settings, sim.frame(2000), "test", client, verbose=False)
    producer = deployment.producer()
    deployment.worker(tmp_path).start()

    def versions_seen() -> list[str | None]:
        return [s["batch_version"] for s in deployment.read(names.signals)]

    def versions_of_next_50_signals() -> set[str | None]:
        seen_before = len(versions_seen())
        for _ in range(10):
            producer.send_requests(sim.requests(5))
            producer.flush()
            time.sleep(0.1)
        deployment.wait_for(lambda: len(versions_seen()) == seen_before + 50, 30, "signals")
        return set(versions_seen()[seen_before:])

    producer.send_requests(sim.requests(20))
    producer.flush()
    deployment.wait_for(lambda: len(versions_seen()) == 20, 60, "first signals")
    assert set(versions_seen()) == {v1}, "the active model is loaded at start"

    v2, _ = train_and_store(deployment.settings, sim.frame(2000), "test", client, verbose=False)
    activated = time.monotonic()
    while v2 not in versions_seen():
        assert time.monotonic() - activated < 5.0, "new version not in effect within 5 s"
        producer.send_requests(sim.requests(5))
        producer.flush()
        time.sleep(0.1)
    switch_seconds = time.monotonic() - activated

    # A tampered copy of v2 (same metadata, changed bytes) fails its checksum and is refused.
    store = Path(deployment.settings.batch.store)
    tampered = "20990101T000000000000Z-7a3bed00"
    shutil.copytree(store / v2, store / tampered)
    data = bytearray((store / tampered / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (store / tampered / MODEL_FILE).write_bytes(bytes(data))
    point_at(tampered)
    assert versions_of_next_50_signals() == {v2}
    worker = deployment.workers[0]
    assert worker.alive()
    assert "fails its checksum" in worker.log_path.read_text()

    # A truncated file stored with a matching checksum fails to parse and is refused too.
    models = model_store(deployment.settings)
    truncated = models.save(
        (store / v2 / MODEL_FILE).read_bytes()[:300],
        {**models.metadata(v2), "reason": "truncated on purpose"},
    )
    point_at(truncated)
    assert versions_of_next_50_signals() == {v2}
    assert "not a valid XGBoost model" in worker.log_path.read_text()
    assert worker.alive()

    # A pointer that names a path outside the store is refused by its name alone.
    point_at(str(tmp_path / "evilZ-1"))
    assert versions_of_next_50_signals() == {v2}
    assert "is not a model version name" in worker.log_path.read_text()
    assert worker.alive()
    print(f"version switch observed after {switch_seconds:.2f}s")
