"""The signal client's awaited latency next to the raw topic latency, measured side by side.

One worker (aiokafka engine, an active XGBoost model, every key's online model warmed up) on
the embedded broker and Redis. Two ways to get a signal, alternated round by round so both see
the same broker, worker and machine:

* **raw**: an aiokafka producer writes the requests (key and partition as the workers expect)
  and a consumer positioned at the end of ``signals`` takes the time each one's signal arrives
  -- the floor any client can reach on this topic layout;
* **client**: ``AsyncSignalClient.request`` awaited; the time from the call to its return,
  including the contract check, the per-request delivery ack and the hand-over by
  ``request_id``.

At two concurrencies: 1 request in flight (sequential) and 1,000 sent at once (every one
awaited concurrently). For a burst, both paths count every request from the burst's start
(what a trading system that asked for 1,000 signals waits); the raw path is also shown from
each request's own send, which leaves out its queueing behind the burst. Everything runs on
this machine's 2 cores, load generator and broker included.
Writes ``bench/results/client_latency.json``.

    python -m bench.client_latency [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.composition import contract_spec
from bench.harness import (
    activate_batch_model,
    applied_total,
    create_topics,
    infrastructure,
    isolated_settings,
    markdown,
    save,
    start_worker,
    wait_until,
)
from models.market import MarketSimulator
from streams.client import AsyncSignalClient, Endpoint
from streams.client.endpoint import partitions_of
from streams.client.records import request_record
from streams.partitioning import partition_for
from streams.producer import MessageProducer
from streams.reader import TopicReader

KEYS = [f"SYM{i:02d}" for i in range(20)]
WARM_OUTCOMES = 4000
BURST = 1000
SEQUENTIAL = 200


class RawPath:
    """Requests written and signals read with bare aiokafka clients (no request matching
    beyond a dict of send times)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.sent: dict[str, float] = {}
        self.own: dict[str, float] = {}
        self.arrived: dict[str, float] = {}

    async def start(self) -> None:
        options = self.endpoint.kafka.client_options()
        topics = self.endpoint.topics
        self.producer = AIOKafkaProducer(**options, linger_ms=1, acks="all")
        await self.producer.start()
        self.partitions = partitions_of(
            topics.requests, await self.producer.partitions_for(topics.requests)
        )
        with TopicReader(self.endpoint.kafka, topics.signals) as reader:
            reader.seek()
            ends = reader.high_watermarks()
        self.consumer = AIOKafkaConsumer(
            **options, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=10
        )
        await self.consumer.start()
        assigned = [TopicPartition(topics.signals, p) for p in sorted(ends)]
        self.consumer.assign(assigned)
        for tp in assigned:
            self.consumer.seek(tp, ends[tp.partition])
        self.receiving = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    self.arrived[orjson.loads(record.value)["request_id"]] = now

    async def send(self, requests: list[dict[str, Any]]) -> None:
        """Send them all at once and wait until every signal arrived.

        Latency counts from the burst's start for every request, as for the client's
        concurrent awaits (all started together); ``own`` also keeps when each request's own
        send began, which leaves out the time it queued behind the others (the first run of
        this benchmark compared the client with that)."""
        topic = self.endpoint.topics.requests
        burst_start = time.perf_counter()
        for request in requests:
            key, value = request_record(request, self.endpoint.spec)
            self.sent[request["request_id"]] = burst_start
            self.own[request["request_id"]] = time.perf_counter()
            await self.producer.send(
                topic, value, key=key, partition=partition_for(key, self.partitions)
            )
        ids = [r["request_id"] for r in requests]
        deadline = time.monotonic() + 120
        while not all(i in self.arrived for i in ids):
            if time.monotonic() > deadline:
                raise TimeoutError("raw signals missing")
            await asyncio.sleep(0.002)

    def latencies_ms(self, ids: list[str], own: bool = False) -> list[float]:
        start = self.own if own else self.sent
        return [1000 * (self.arrived[i] - start[i]) for i in ids]

    async def stop(self) -> None:
        self.receiving.cancel()
        await self.consumer.stop()
        await self.producer.stop()


async def client_round(client: AsyncSignalClient, requests: list[dict[str, Any]]) -> list[float]:
    """Await every request concurrently; the latency of each."""

    async def one(request: dict[str, Any]) -> float:
        started = time.perf_counter()
        signal = await client.request(
            request["key"], request["features"], request_id=request["request_id"]
        )
        assert signal.request_id == request["request_id"] and signal.status == "ok"
        return 1000 * (time.perf_counter() - started)

    return list(await asyncio.gather(*(one(r) for r in requests)))


async def measure(endpoint: Endpoint, sim: MarketSimulator, rounds: int) -> dict[str, Any]:
    raw = RawPath(endpoint)
    await raw.start()
    results: dict[str, dict[str, list[float]]] = {
        "sequential": {"raw": [], "client": []},
        "burst": {"raw": [], "client": [], "raw_own_send": []},
    }
    try:
        async with AsyncSignalClient(endpoint, timeout_s=120.0) as client:
            await client_round(client, sim.requests(200))  # warm-up, not counted
            await raw.send(sim.requests(200))
            for _ in range(rounds):
                batch = sim.requests(BURST)
                await raw.send(batch)
                ids = [r["request_id"] for r in batch]
                results["burst"]["raw"] += raw.latencies_ms(ids)
                results["burst"]["raw_own_send"] += raw.latencies_ms(ids, own=True)
                results["burst"]["client"] += await client_round(client, sim.requests(BURST))
                for request in sim.requests(SEQUENTIAL // rounds):
                    await raw.send([request])
                    results["sequential"]["raw"] += raw.latencies_ms([request["request_id"]])
                for request in sim.requests(SEQUENTIAL // rounds):
                    results["sequential"]["client"] += await client_round(client, [request])
    finally:
        await raw.stop()
    return results


def summary(latencies: list[float]) -> dict[str, float]:
    values = np.asarray(latencies)
    return {
        "n": len(values),
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "max_ms": float(values.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, infrastructure() as endpoints:
        settings = isolated_settings(
            Path(tmp), model={"key_field": "key"}, online={"min_updates": 20}
        )
        names = create_topics(settings, endpoints)
        activate_batch_model(settings, endpoints.redis)
        sim = MarketSimulator(seed=4, keys=KEYS)
        producer = MessageProducer(endpoints.kafka, names, contract_spec(settings))
        producer.send_outcomes(sim.outcomes(WARM_OUTCOMES))
        producer.close()
        worker = start_worker(settings, endpoints, Path(tmp) / "worker.log")
        try:
            wait_until(
                lambda: applied_total(settings, endpoints) >= WARM_OUTCOMES, 120, "warm-up", 0.2
            )
            endpoint = Endpoint(endpoints.kafka, names, contract_spec(settings))
            measured = asyncio.run(measure(endpoint, sim, args.rounds))
        finally:
            worker.stop()
    rows = []
    for concurrency, label in (("sequential", "1 in flight"), ("burst", f"{BURST:,} at once")):
        for path in ("raw", "client"):
            rows.append(
                {"concurrency": label, "path": path, **summary(measured[concurrency][path])}
            )
    for raw_row, client_row in zip(rows[::2], rows[1::2], strict=True):
        client_row["p99_vs_raw"] = client_row["p99_ms"] / raw_row["p99_ms"]
    rows.append(
        {
            "concurrency": f"{BURST:,} at once",
            "path": "raw, from each request's own send",
            **summary(measured["burst"]["raw_own_send"]),
        }
    )
    table = markdown(
        rows,
        [
            ("concurrency", "in flight"),
            ("path", "path"),
            ("n", "requests"),
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
            ("max_ms", "max ms"),
            ("p99_vs_raw", "p99 / raw p99"),
        ],
    )
    print(table)
    path = save("client_latency", {"rounds": args.rounds, "rows": rows, "table": table})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
