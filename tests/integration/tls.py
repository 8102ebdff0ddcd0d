"""A broker reached over TLS only, for end-to-end runs on an encrypted connection.

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

import trustme

from app.embedded import ChildProcess, free_port, kafka_ready, tansu_binary
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
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

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
class TlsBroker:
    """How to reach the TLS-only broker, and the proxy (to count connections)."""

    kafka: KafkaConnection
    proxy: TlsProxy


@contextlib.contextmanager
def tls_broker(workdir: Path) -> Iterator[TlsBroker]:
    """A private tansu reachable only through TLS; the connection trusts only the test CA."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(server_context)
    cafile = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    proxy = TlsProxy(free_port(), free_port(), server_context)
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
    kafka = KafkaConnection(f"127.0.0.1:{proxy.port}", "SSL", ssl_cafile=cafile)
    try:
        broker.start(lambda: kafka_ready(kafka))
        yield TlsBroker(kafka, proxy)
    finally:
        broker.stop()
        proxy.stop()
