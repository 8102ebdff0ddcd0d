"""The client library against a real worker: outcome producer, 1,000 concurrent signal
awaits, deadlines, the co-partitioning check, and dead-letter tail / replay (learned once)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import orjson
from kafka import KafkaProducer

from app.composition import contract_spec
from app.worker import worker_environment
from models.market import MarketSimulator
from streams.client import (
    AsyncSignalClient,
    ContractError,
    Endpoint,
    OutcomeProducer,
    SignalClient,
)
from streams.partitioning import partition_for
from tests.schema_check import assert_valid

DOCS = Path(__file__).resolve().parents[2] / "docs"
KEYS = tuple(f"SYM{i}" for i in range(4))
N_OUTCOMES = 800
CONCURRENT = 1000


def test_clients_round_trip_deadlines_misrouting_and_replay(deploy, tmp_path):
    deployment = deploy(model={"key_field": "key"}, online={"min_updates": 20})
    settings = deployment.settings
    deployment.create_topics()
    endpoint = Endpoint(deployment.endpoints.kafka, deployment.names, contract_spec(settings))
    names = deployment.names
    sim = MarketSimulator(seed=5, keys=KEYS)
    outcomes = sim.outcomes(N_OUTCOMES)

    # The outcome producer refuses what a worker would dead-letter, before sending it.
    with OutcomeProducer(endpoint) as producer:
        bad = {**outcomes[0], "label": 2}
        try:
            producer.send_message(bad)
        except ContractError as exc:
            assert "label must be 0 or 1" in exc.reason
        else:
            raise AssertionError("an invalid outcome was accepted by the client")
        for message in outcomes:
            producer.send_message(message)
        producer.flush()

    # A producer bug: a feature renamed. It goes to the dead-letter topic.
    renamed = {**sim.outcomes(1)[0], "outcome_id": "o-renamed"}
    features = dict(renamed["features"])
    features["ret1"] = features.pop("ret_1")
    renamed["features"] = features
    raw = KafkaProducer(**deployment.endpoints.kafka.client_options(), acks="all")
    raw.send(names.outcomes, key=renamed["key"].encode(), value=orjson.dumps(renamed)).get(30)

    worker = deployment.worker(tmp_path).start()
    worker.wait_until_claimed()
    deployment.wait_for(
        lambda: sum(m.updates for m in deployment.key_models().values()) == N_OUTCOMES,
        60,
        "the outcomes learned",
    )
    # Every outcome landed where the default partitioner puts its key (the workers' check).
    partitions = list(range(settings.topics.partitions))
    placed = [r for r in _records(deployment, names.outcomes) if r.value != orjson.dumps(renamed)]
    assert all(r.partition == partition_for(r.key, partitions) for r in placed)

    # 1,000 concurrent awaits on one client, every one answered with its own signal.
    requests = sim.requests(CONCURRENT)

    async def round_trip() -> tuple[list, float, object]:
        async with AsyncSignalClient(endpoint, timeout_s=60.0) as client:
            started = time.perf_counter()
            signals = await asyncio.gather(
                *(
                    client.request(r["key"], r["features"], request_id=r["request_id"])
                    for r in requests
                )
            )
            elapsed = time.perf_counter() - started
            past = await client.request(KEYS[0], requests[0]["features"], deadline_ms=1)
            return signals, elapsed, past

    signals, elapsed, expired = asyncio.run(round_trip())
    assert [s.request_id for s in signals] == [r["request_id"] for r in requests]
    assert all(s.key == r["key"] for s, r in zip(signals, requests, strict=True))
    assert {s.status for s in signals} == {"online_only"}  # no batch model in this test
    assert all(s.online_updates >= 20 and s.score is not None for s in signals)
    assert elapsed < 60
    assert expired.status == "expired" and expired.score is None
    assert "deadline_ms 1 passed" in expired.reason

    # The blocking flavour, from two threads at once.
    with SignalClient(endpoint, timeout_s=30.0) as client:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(lambda r: client.request(r["key"], r["features"]), sim.requests(20))
            )
    assert len(answers) == 20 and all(a.status == "online_only" for a in answers)

    # A request placed on the wrong partition (another partitioner) is refused, not scored
    # without its online model.
    wrong = (partition_for(b"SYM1", partitions) + 1) % len(partitions)
    misrouted = {**sim.requests(1)[0], "key": "SYM1", "request_id": "r-misrouted"}
    raw.send(names.requests, key=b"SYM1", value=orjson.dumps(misrouted), partition=wrong).get(30)
    deployment.wait_for(
        lambda: any(d["kind"] == "misrouted" for d in deployment.read(names.requests_dead_letter)),
        30,
        "the misrouted request's dead letter",
    )
    letter = next(
        d for d in deployment.read(names.requests_dead_letter) if d["kind"] == "misrouted"
    )
    assert f"arrived on partition {wrong}" in letter["reason"]
    assert "r-misrouted" not in {s["request_id"] for s in deployment.read(names.signals)}

    # Dead letters: tail shows the renamed feature; replay is a dry run until --execute, then
    # sends the fixed original once, and never again.
    tail = deployment.cli("dlq", "tail", "--no-follow", "--kind", "invalid", check=True).stdout
    assert "feature 'ret_1' is missing" in tail and "o-renamed" in tail
    dry = deployment.cli("dlq", "replay", "--rename", "ret1=ret_1", check=True).stdout
    assert "would replay" in dry and "1 would be replayed" in dry, dry
    unfixed = deployment.cli("dlq", "replay", "--execute", check=True).stdout
    assert "still refused: feature 'ret_1' is missing" in unfixed and "0 replayed" in unfixed
    sent = deployment.cli("dlq", "replay", "--rename", "ret1=ret_1", "--execute", check=True)
    assert "1 replayed" in sent.stdout, sent.stdout
    again = deployment.cli("dlq", "replay", "--rename", "ret1=ret_1", "--execute", check=True)
    assert "0 replayed" in again.stdout and "1 replayed before" in again.stdout, again.stdout
    deployment.wait_for(
        lambda: sum(m.updates for m in deployment.key_models().values()) == N_OUTCOMES + 1,
        30,
        "the replayed outcome learned",
    )
    time.sleep(1.0)  # a second copy, had one been sent, would be learned or refused by now
    assert sum(m.updates for m in deployment.key_models().values()) == N_OUTCOMES + 1
    copies = [r for r in _records(deployment, names.outcomes) if b"o-renamed" in r.value]
    assert len(copies) == 2  # the original (refused) and one replay
    replayed = orjson.loads(copies[1].value)
    assert replayed["features"]["ret_1"] == renamed["features"]["ret1"]
    assert replayed["schema_version"] == 1
    assert copies[1].partition == partition_for(copies[1].key, partitions)
    letters = deployment.read(names.outcomes_dead_letter)
    assert [d["kind"] for d in letters] == ["invalid"]  # no duplicate letter: sent once

    # The documentation's examples run as written, against this deployment.
    outputs = []
    for page in ("outcome-producers.md", "trading-systems.md"):
        for code in re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.DOTALL):
            run = subprocess.run(
                [sys.executable, "-c", code],
                env=worker_environment(settings, deployment.endpoints),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert run.returncode == 0, (page, run.stderr)
            outputs.append(run.stdout)
    assert outputs[0] == "outcome stored\n"
    assert outputs[1].startswith(("no_model None", "online_only ")), outputs[1]
    assert [line.split()[0] for line in outputs[2].splitlines()] == ["AAPL", "MSFT"]

    # Everything this test saw on the topics follows its schema.
    assert_valid("signal", deployment.read(names.signals))
    assert_valid("dead-letter", letters + deployment.read(names.requests_dead_letter))
    assert_valid("trade-outcome", deployment.read(names.outcomes), closed=False)
    raw.close()


def _records(deployment, topic: str) -> list:
    from streams.reader import read_topic

    return read_topic(deployment.endpoints.kafka, topic)
