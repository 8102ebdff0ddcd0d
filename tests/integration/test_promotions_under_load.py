"""Ten-plus promotions and rollbacks while requests stream: nothing lost, versions always honest."""

from __future__ import annotations

import threading
import time

import pytest

from models.market import FEATURES, MarketSimulator
from models.training import train_batch_model
from streams.model_updates import ModelUpdatePublisher, from_registry_event
from tests.integration.infra import ENGINES

RATE_PER_TICK, TICK_S = 20, 0.02  # about 1,000 requests/s
CHANGES = 12


@pytest.mark.parametrize("engine", ENGINES)
def test_promotions_and_rollbacks_under_load(deploy, tmp_path, engine):
    deployment = deploy(
        batch={"poll_interval_s": 1.0}, processing={"score_batch": 100, "engine": engine}
    )
    names = deployment.names
    registry = deployment.registry()
    store = registry.store
    sim = MarketSimulator(seed=23)
    versions = []
    for seed in range(3):
        trained = train_batch_model(MarketSimulator(seed=seed).frame(3000), FEATURES)
        versions.append(store.save(trained.model_bytes(), trained.metadata))
    # (version, set no earlier than, replaced no later than)
    timeline: list[list] = [[versions[0], 0.0, float("inf")]]
    registry.activate(versions[0], "test", "initial")
    worker = deployment.worker(tmp_path).start()
    worker.wait_until_claimed()

    sent: dict[str, float] = {}
    producer = deployment.producer()
    stop = threading.Event()

    def produce() -> None:
        while not stop.is_set():
            batch = sim.requests(RATE_PER_TICK)
            now = time.time()
            for request in batch:
                sent[request["request_id"]] = now
            producer.send_requests(batch)
            time.sleep(TICK_S)
        producer.flush()

    publisher = ModelUpdatePublisher(deployment.endpoints.kafka, names.model_updates)
    thread = threading.Thread(target=produce)
    thread.start()
    try:
        time.sleep(1.0)
        for i in range(CHANGES):
            before = time.time()
            if i % 3 == 2:
                event = registry.rollback(None, "test", f"rollback {i}")
            else:
                event = registry.activate(versions[(i + 1) % 3], "test", f"promote {i}")
            after = time.time()
            timeline[-1][2] = after
            timeline.append([event.version, before, float("inf")])
            publisher.publish(from_registry_event(event))
            time.sleep(0.6)
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join()
        publisher.close()

    deployment.wait_for(lambda: len(deployment.read(names.signals)) >= len(sent), 60, "signals")
    signals = deployment.read(names.signals)
    ids = [s["request_id"] for s in signals]
    assert len(ids) == len(set(ids)) == len(sent), "lost or duplicated requests"
    assert set(ids) == set(sent)
    assert deployment.read(names.requests_dead_letter) == []
    assert worker.alive()
    assert '"level":"ERROR"' not in worker.log_path.read_text()

    used = set()
    for signal in signals:
        start, scored = sent[signal["request_id"]], signal["scored_at"] / 1000.0
        version = signal["batch_version"]
        used.add(version)
        assert any(
            v == version and begin <= scored and start <= end for v, begin, end in timeline
        ), f"{version} was not active while {signal['request_id']} was processed"
    assert len(timeline) == CHANGES + 1
    assert used == set(versions), "every version should have scored some requests"
