"""Shared pieces of the benchmarks: infrastructure, isolated settings, processes, reports."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.composition import stored_state
from app.embedded import EmbeddedInfrastructure, Endpoints
from app.redis_connection import RedisConnection
from app.worker import worker_environment
from config import Settings, load_settings
from streams.topics import TopicNames, ensure_topics_for

RESULTS = Path(__file__).parent / "results"


@contextmanager
def infrastructure() -> Iterator[Endpoints]:
    """The embedded broker and Redis, or the configured ones."""
    infra = EmbeddedInfrastructure(
        os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("REDIS_URL")
    )
    try:
        yield infra.start()
    finally:
        infra.stop()


def isolated_settings(store: Path, **groups: dict[str, Any]) -> Settings:
    """Settings with private topics, group, namespace and model store for one measurement."""
    run = uuid.uuid4().hex[:8]
    overrides: dict[str, dict[str, Any]] = {
        "topics": {
            "outcomes": f"b{run}-outcomes",
            "requests": f"b{run}-requests",
            "signals": f"b{run}-signals",
            "model_updates": f"b{run}-model-updates",
            "retrain_requests": f"b{run}-retrain-requests",
            "drift_alerts": f"b{run}-alerts",
        },
        "redis": {"namespace": f"bench-{run}"},
        "kafka": {"consumer_group": f"bench-{run}", "session_timeout_s": 6.0},
        "batch": {"store": str(store)},
        "web": {"enabled": False},
    }
    for group, values in groups.items():
        overrides[group] = {**overrides.get(group, {}), **values}
    return load_settings(environ={}).with_overrides(**overrides)


def create_topics(settings: Settings, endpoints: Endpoints) -> TopicNames:
    """Create the settings' topics; returns their names."""
    return ensure_topics_for(settings, endpoints.kafka)


class Process:
    """A benchmark subprocess (a worker or a baseline), its log and its memory."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.log_path = log
        self.process = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def rss_mb(self) -> float:
        """Resident memory of the process, in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def activate_batch_model(settings: Settings, redis: RedisConnection) -> str:
    """Train a batch model on 20,000 simulated outcomes and make it the active version, as in
    production after the first ``streamlearn train``; returns the version."""
    from app.train import train_and_store
    from models.market import MarketSimulator

    client = redis.client()
    try:
        version, _ = train_and_store(
            settings, MarketSimulator(seed=8).frame(20_000), "bench", client, verbose=False
        )
    finally:
        client.close()
    return version


def learn_in_process(engine, records, checkpoint_every: int = 1000) -> float:
    """Run the learner's processor over ``records`` in batches of 500 with Redis checkpoints
    (no broker); returns the seconds it took. Closes the engine."""
    import asyncio

    async def run() -> float:
        for partition in sorted({record.partition for record in records}):
            await engine.state.ensure(partition)  # what an engine does on assignment
        started = time.perf_counter()
        for start in range(0, len(records), 500):
            await engine.learner.process(records[start : start + 500])
            if start % checkpoint_every == 0:
                await engine.state.checkpoint()
        await engine.state.checkpoint()
        elapsed = time.perf_counter() - started
        await engine.close()
        return elapsed

    return asyncio.run(run())


def start_worker(settings: Settings, endpoints: Endpoints, log: Path) -> Process:
    """A ``streamlearn worker`` using exactly ``settings``."""
    return Process(["-m", "app.cli", "worker"], worker_environment(settings, endpoints), log)


def applied_total(settings: Settings, endpoints: Endpoints) -> int:
    """Outcomes whose effect is checkpointed in Redis (sum over partitions)."""

    async def read() -> int:
        async with stored_state(settings, endpoints.redis) as store:
            offsets = [await store.applied_offset(p) for p in range(settings.topics.partitions)]
        return sum(offset + 1 for offset in offsets)

    return asyncio.run(read())


def wait_until(condition, timeout_s: float, what: str, poll_s: float = 0.05) -> float:
    """Wait for ``condition()``; returns when it became true (monotonic seconds)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(poll_s)
    return time.monotonic()


def markdown(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of ``rows`` with (key, header) ``columns``."""
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            if isinstance(value, float):
                cells.append(f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}")
            elif isinstance(value, int):
                cells.append(f"{value:,}")
            else:
                cells.append("-" if value is None else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save(name: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` with the machine described."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": name,
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                **data,
            },
            indent=2,
            default=str,
        )
    )
    return path
