"""Embedded broker and Redis: healthy on start, no orphan processes after any kind of exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from app.embedded import EmbeddedInfrastructure, pid_alive


def _wait_gone(pids: list[int], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(pid_alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def test_start_and_stop_leave_nothing_behind():
    infra = EmbeddedInfrastructure(kafka=None, redis_url=None)
    endpoints = infra.start()
    pids = infra.pids
    assert len(pids) == 2 and all(pid_alive(p) for p in pids)
    assert endpoints.kafka_bootstrap.startswith("127.0.0.1:")
    infra.stop()
    assert _wait_gone(pids, 1.0)


def test_given_endpoints_start_nothing():
    infra = EmbeddedInfrastructure(kafka="kafka:9092", redis_url="redis://r:6379/0")
    assert infra.start().kafka_bootstrap == "kafka:9092"
    assert infra.pids == []
    infra.stop()


def test_children_die_with_a_parent_killed_by_sigkill():
    script = (
        "import sys, time\n"
        "from app.embedded import EmbeddedInfrastructure\n"
        "infra = EmbeddedInfrastructure(None, None); infra.start()\n"
        "print(*infra.pids, flush=True); time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(pid_alive(p) for p in pids)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    assert _wait_gone(pids), "embedded services outlived their parent"


def test_ctrl_c_on_a_standalone_worker_stops_everything():
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STREAMLEARN_", "KAFKA_", "REDIS_"))
    }
    env["STREAMLEARN_WEB__ENABLED"] = "false"
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = worker.stderr.readline()
    assert "using embedded infrastructure" in line, line
    children = subprocess.run(
        ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert len(children) >= 2, children
    time.sleep(3)  # let the Faust worker start
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=60) is not None
    assert _wait_gone([int(c) for c in children])
