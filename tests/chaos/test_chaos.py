"""Chaos: kills, Redis restarts, Redis and broker pauses, on both engines, with hostile input.

After every scenario: each valid outcome learned exactly once (update counts), each key's
online model bit-for-bit equal to River trained in-process on that key's valid outcomes in
order, every request answered with a finite score, and no worker exited except those killed.

``make test`` runs a short version (a few events of each kind; every kind on the default
engine, kills on both: the Faust engine's other faults stay in the full run, to keep
``make test`` within its 15 minutes); ``make chaos`` the full one (``STREAMLEARN_CHAOS=full``,
both engines: 50 kills, 10 stops, 3 Redis restarts, 3 pauses of 10 s of each service) and
writes the results table to ``bench/results/chaos.json``.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from config.settings import ProcessingSettings
from models.market import MarketSimulator
from streams.reader import read_topic
from tests.chaos.harness import (
    KEYS,
    Services,
    Verdict,
    applied_total,
    chaos_deployment,
    pause,
    private_services,
    produce,
    verdict,
)
from tests.integration.infra import ENGINES, Deployment, WorkerProcess

FULL = os.environ.get("STREAMLEARN_CHAOS") == "full"
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "chaos.json"

#: scenario -> (events, outcomes) in the short and full versions.
SCALE = {
    "sigkill": (4, 4_000) if not FULL else (50, 40_000),
    "sigterm": (2, 4_000) if not FULL else (10, 12_000),
    "redis-restart": (1, 4_000) if not FULL else (3, 12_000),
    "redis-pause": (1, 4_000) if not FULL else (3, 12_000),
    "broker-pause": (1, 4_000) if not FULL else (3, 12_000),
}
PAUSE_S = 10.0
DEFAULT_ENGINE = ProcessingSettings().engine
VERDICTS: list[Verdict] = []


class RequestLoad:
    """Sends signal requests steadily from a thread, so scoring is tested during the faults."""

    def __init__(self, deployment: Deployment, rate_per_s: int = 100) -> None:
        self._producer = deployment.producer()
        self._sim = MarketSimulator(seed=5, keys=KEYS)
        self._rate = rate_per_s
        self._stop = threading.Event()
        self.sent: list[dict] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RequestLoad:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            batch = self._sim.requests(self._rate // 10)
            self._producer.send_requests(batch)
            self.sent.extend(batch)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._producer.flush()


def _run_scenario(
    tmp_path: Path,
    engine: str,
    scenario: str,
    inject: Callable[[Services, list[WorkerProcess], random.Random], None],
) -> None:
    events, n_outcomes = SCALE[scenario]
    rng = random.Random(f"{scenario}-{engine}")
    with private_services(tmp_path) as services:
        deployment = chaos_deployment(services, tmp_path, engine)
        try:
            stream = produce(deployment, n_outcomes, 200, seed=rng.randrange(10**6))
            total = len(stream.valid) + stream.duplicates + stream.hostile
            workers = [deployment.worker(tmp_path).start() for _ in range(2)]
            with RequestLoad(deployment) as load:
                targets = sorted(rng.uniform(0.05, 0.85) * total for _ in range(events))
                for target in targets:
                    deployment.wait_for(
                        lambda t=target: applied_total(deployment) >= t, 180, f"{target:.0f}"
                    )
                    time.sleep(rng.uniform(0.0, 0.3))
                    inject(services, workers, rng)
                deployment.wait_for(
                    lambda: applied_total(deployment) == total, 300, "every record applied"
                )
            stream.requests += load.sent
            wanted = {r["request_id"] for r in stream.requests}
            try:
                deployment.wait_for(
                    lambda: wanted <= _answered(deployment), 120, "every request answered"
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {_unanswered(deployment, wanted)}") from None
            exits = sum(1 for w in deployment.workers if not (w.alive() or w.killed or w.stopped))
            result = verdict(scenario, engine, events, deployment, stream, exits)
        finally:
            deployment.close()
    VERDICTS.append(result)
    _save()
    result.assert_clean(stream)


def _answered(deployment: Deployment) -> set[str]:
    return {s["request_id"] for s in deployment.read(deployment.names.signals)}


def _unanswered(deployment: Deployment, wanted: set[str]) -> str:
    """Which requests have no signal, and where they are in ``signal-requests`` (if at all)."""
    missing = wanted - _answered(deployment)
    where: dict[int, list[int]] = {}
    for record in read_topic(deployment.endpoints.kafka, deployment.names.requests):
        if orjson.loads(record.value).get("request_id") in missing:
            where.setdefault(record.partition, []).append(record.offset)
    in_topic = sum(len(offsets) for offsets in where.values())
    spans = {p: (min(o), max(o), len(o)) for p, o in sorted(where.items())}
    return (
        f"{len(missing)} of {len(wanted)} requests unanswered; {in_topic} of them are in the "
        f"requests topic, (first offset, last offset, count) by partition: {spans}"
    )


def _save() -> None:
    if FULL:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps([v.as_dict() for v in VERDICTS], indent=2) + "\n")


def _kill_one(services: Services, workers: list[WorkerProcess], rng: random.Random) -> None:
    index = rng.randrange(len(workers))
    workers[index].kill9()
    workers[index] = workers[index].deployment.worker(workers[index].log_path.parent).start()


def _stop_one(services: Services, workers: list[WorkerProcess], rng: random.Random) -> None:
    """A graceful stop (SIGTERM) of a running worker in the middle of the stream, then a new
    worker. (A SIGTERM during interpreter start-up, before any handler exists, is a death by
    signal with nothing to stop; "running" here means up for 5 s.)"""
    index = rng.randrange(len(workers))
    time.sleep(max(0.0, 5.0 - (time.monotonic() - workers[index].started_at)))
    code = workers[index].stop()
    assert code == 0, f"a graceful stop must exit 0, got {code}: {workers[index].log_tail()}"
    workers[index] = workers[index].deployment.worker(workers[index].log_path.parent).start()


def _restart_redis(services: Services, workers: list[WorkerProcess], rng: random.Random) -> None:
    services.redis.kill9_and_restart()


def _pause_redis(services: Services, workers: list[WorkerProcess], rng: random.Random) -> None:
    assert services.redis.pid is not None
    pause(services.redis.pid, PAUSE_S)


def _pause_broker(services: Services, workers: list[WorkerProcess], rng: random.Random) -> None:
    pause(services.broker_pid, PAUSE_S)


SCENARIOS = [
    ("sigkill", _kill_one),
    ("sigterm", _stop_one),
    ("redis-restart", _restart_redis),
    ("redis-pause", _pause_redis),
    ("broker-pause", _pause_broker),
]
#: (scenario, inject, engine): every scenario on every engine in the full run; in the short
#: run kills on both engines and the other faults on the default engine (see the module doc).
CASES = [
    (scenario, inject, engine)
    for scenario, inject in SCENARIOS
    for engine in ENGINES
    if FULL or scenario == "sigkill" or engine == DEFAULT_ENGINE
]


@pytest.mark.parametrize(("scenario", "inject", "engine"), CASES)
def test_chaos(tmp_path, engine, scenario, inject):
    _run_scenario(tmp_path, engine, scenario, inject)
