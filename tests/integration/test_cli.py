"""The CLI: --help everywhere, one-line failures with non-zero exits, train from file and topic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.composition import model_store
from app.worker import worker_environment
from models.market import MarketSimulator

COMMANDS = [
    "worker",
    "demo",
    "train",
    "status",
    "models",
    "retrain",
    "retrainer",
    "notify",
    "dashboard",
    "backtest",
    "alerts",
    "drift",
    "dlq",
    "schemas",
]


def _cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STREAMLEARN_", "KAFKA_", "REDIS_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env or base,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        None,
        *COMMANDS,
        "models list",
        "models show",
        "models compare",
        "models promote",
        "models rollback",
        "models rebuild",
    ],
)
def test_every_command_has_help(command):
    words = command.split() if command else []
    result = _cli(*words, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: streamlearn{' ' + command if command else ''}")


def test_failures_are_one_line_and_non_zero(tmp_path):
    status = _cli("status")
    assert status.returncode == 1
    assert status.stderr.strip().splitlines() == [
        "streamlearn: error: status inspects a running deployment: "
        "set KAFKA_BOOTSTRAP_SERVERS and REDIS_URL"
    ]
    env = {**os.environ, "STREAMLEARN_BLEND__W_ONLINE": "0.9"}
    bad = _cli("status", env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "STREAMLEARN_BLEND" in bad.stderr
    missing = _cli("train", "--from-file", str(tmp_path / "none.csv"), "--no-activate")
    assert missing.returncode == 1
    assert (
        missing.stderr.strip()
        == f"streamlearn: error: training file {tmp_path / 'none.csv'} does not exist"
    )
    usage = _cli("train")
    assert usage.returncode == 2 and "one of the arguments" in usage.stderr
    no_redis = _cli("models", "list")
    assert no_redis.returncode == 1
    assert (
        no_redis.stderr.strip() == "streamlearn: error: the registry lives in Redis: set REDIS_URL"
    )


@pytest.mark.parametrize("command", ["worker", "retrainer"])
@pytest.mark.parametrize(
    ("given", "missing"),
    [("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"), ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")],
)
def test_half_configured_infrastructure_is_refused_at_start(command, given, missing):
    # A worker on a real broker with a throwaway embedded Redis would ack Kafka and lose its
    # state on restart: it must not start (nothing listens on port 9 of localhost).
    value = "127.0.0.1:9" if given.startswith("KAFKA") else "redis://127.0.0.1:9/0"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMLEARN_", "KAFKA_"))}
    base.pop("REDIS_URL", None)
    result = _cli(command, env={**base, given: value}, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"streamlearn: error: {given} is set but {missing} is not: set {missing} too, or pass "
        "--embedded to start an embedded one (its data is lost when the process stops)"
    ]


def test_train_from_file_and_from_topic_activate_a_version(deploy):
    deployment = deploy()
    env = worker_environment(deployment.settings, deployment.endpoints)
    sim = MarketSimulator(seed=21)
    path = Path(deployment.settings.batch.store).parent / "history.parquet"
    sim.frame(2000).to_parquet(path)

    from_file = _cli("train", "--from-file", str(path), env=env)
    assert from_file.returncode == 0, from_file.stderr
    registry = deployment.registry()
    first = registry.active()
    assert first and first in from_file.stdout and "active" in from_file.stdout

    producer = deployment.producer()
    producer.send_outcomes(sim.outcomes(1500))
    producer.send_raw(deployment.names.outcomes, b"global", b"not json")  # skipped
    producer.flush()
    from_topic = _cli("train", "--from-topic", "--max-rows", "1200", env=env)
    assert from_topic.returncode == 0, from_topic.stderr
    second = registry.active()
    assert second != first
    metadata = model_store(deployment.settings).load(second).metadata
    assert sum(metadata["rows"].values()) == 1200
    assert metadata["source"] == f"topic:{deployment.names.outcomes}"
