"""Signal clients: send a signal request and await its signal by ``request_id``.

One producer and one consumer per client, shared by every request in flight: the consumer
reads ``signals`` from where the topic ended when the client started (the end is found with a
fetch, not ListOffsets, which some Kafka-compatible brokers answer wrongly) and hands each
signal to the request waiting for its id; signals for other clients are skipped after decoding
only their ``request_id``. A request carries ``deadline_ms`` = its ``ts`` + the timeout by
default, so a worker behind a backlog answers ``expired`` instead of scoring what nobody waits
for any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import uuid
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.client.endpoint import ClientError, Endpoint, partitions_of
from streams.client.records import request_record
from streams.contracts import ContractError
from streams.messages import SignalMessage
from streams.partitioning import partition_for
from streams.reader import TopicReader
from streams.records import now_ms

log = logging.getLogger(__name__)

#: What a signal is, decoded and checked against its schema.
Signal = SignalMessage

T = TypeVar("T")


class SignalTimeoutError(TimeoutError):
    """No signal came back for a request within its timeout."""


class _Id(msgspec.Struct):
    request_id: str


_ID = msgspec.json.Decoder(_Id)
_SIGNAL = msgspec.json.Decoder(SignalMessage)


class AsyncSignalClient:
    """Scores requests through the workers, for asyncio code::

        async with AsyncSignalClient(Endpoint.load()) as client:
            signal = await client.request("AAPL", features, timeout_s=2.0)
            print(signal.status, signal.score)

    Safe for any number of concurrent ``request`` calls on one event loop.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        timeout_s: float = 5.0,
        deadline: bool = True,
        fetch_wait_ms: int = 10,
        linger_ms: int = 1,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.deadline = deadline
        self._fetch_wait_ms = fetch_wait_ms
        self._linger_ms = linger_ms
        self._pending: dict[str, asyncio.Future[SignalMessage]] = {}
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._receiver: asyncio.Task | None = None
        self._request_partitions: list[int] = []
        self.skipped = 0  #: signals read that no request of this client waited for

    async def start(self) -> None:
        """Connect, and position the consumer at the current end of ``signals``."""
        options = self.endpoint.kafka.client_options()
        topics = self.endpoint.topics
        # One batch holds a 1,000-request burst (~400 B each): with the 16 KiB default, 1,000
        # concurrent sends queued behind ~25 batch drains (bench.client_latency: burst p50
        # 61 -> 40 ms with this, p99 209 -> 184 ms; under the broker's 1 MiB record limit).
        self._producer = AIOKafkaProducer(
            **options, acks="all", linger_ms=self._linger_ms, max_batch_size=1_000_000
        )
        await self._producer.start()
        self._request_partitions = partitions_of(
            topics.requests, await self._producer.partitions_for(topics.requests)
        )
        ends = await asyncio.to_thread(_signal_ends, self.endpoint)
        self._consumer = AIOKafkaConsumer(
            **options,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_wait_ms,
        )
        await self._consumer.start()
        partitions = [TopicPartition(topics.signals, p) for p in sorted(ends)]
        self._consumer.assign(partitions)
        for tp in partitions:
            self._consumer.seek(tp, ends[tp.partition])
        self._receiver = asyncio.create_task(self._receive(), name="signal-client-receiver")

    async def request(
        self,
        key: str,
        features: Mapping[str, float],
        timeout_s: float | None = None,
        request_id: str | None = None,
        ts: int | None = None,
        deadline_ms: int | None = None,
        **fields: Any,
    ) -> SignalMessage:
        """Send a signal request and return its signal.

        ``request_id`` defaults to a random one; ``ts`` to now; ``deadline_ms`` to
        ``ts + timeout`` (unless the client was made with ``deadline=False``). Raises
        :class:`SignalTimeoutError` when no signal comes within ``timeout_s`` and
        :class:`~streams.contracts.ContractError` for a request the workers would refuse.
        An ``expired`` signal is returned like any other (check ``status``).
        """
        if self._producer is None or self._receiver is None:
            raise ClientError("the client is not started (use 'async with' or start())")
        if self._receiver.done():
            raise ClientError(f"the signal consumer stopped: {self._receiver.exception()!r}")
        timeout = self.timeout_s if timeout_s is None else timeout_s
        request_id = request_id or uuid.uuid4().hex
        ts = now_ms() if ts is None else ts
        if deadline_ms is None and self.deadline:
            deadline_ms = ts + int(timeout * 1000)
        message = {
            "request_id": request_id,
            "key": key,
            "ts": ts,
            "features": dict(features),
            **({} if deadline_ms is None else {"deadline_ms": deadline_ms}),
            **fields,
        }
        record_key, value = request_record(message, self.endpoint.spec)
        if request_id in self._pending:
            raise ClientError(f"request_id {request_id!r} is already awaited")
        waiter: asyncio.Future[SignalMessage] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = waiter
        try:
            partition = partition_for(record_key, self._request_partitions)
            async with asyncio.timeout(timeout):
                delivery = await self._producer.send(
                    self.endpoint.topics.requests, value, key=record_key, partition=partition
                )
                # The signal is the proof of delivery; a failed delivery fails the wait at once.
                # Awaiting each delivery ack before the signal put a 1,000-request burst's p99
                # at 184 ms against 62 ms raw; with this it is 67 vs 79 (bench.client_latency).
                delivery.add_done_callback(functools.partial(_fail_on_error, waiter))
                return await waiter
        except TimeoutError:
            raise SignalTimeoutError(
                f"no signal for request {request_id!r} within {timeout:g} s"
            ) from None
        finally:
            self._pending.pop(request_id, None)

    @property
    def in_flight(self) -> int:
        """Requests awaiting their signal now."""
        return len(self._pending)

    async def _receive(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000)
            pending = self._pending
            for records in batches.values():
                for record in records:
                    self._deliver(record.value, pending)

    def _deliver(self, value: bytes | None, pending: dict[str, asyncio.Future]) -> None:
        try:
            request_id = _ID.decode(value or b"").request_id
        except msgspec.DecodeError:
            self.skipped += 1
            return
        waiter = pending.get(request_id)
        if waiter is None or waiter.done():  # another client's, or a repeat (at-least-once)
            self.skipped += 1
            return
        try:
            waiter.set_result(_SIGNAL.decode(value))
        except msgspec.DecodeError as exc:  # a worker bug: say so rather than time out
            waiter.set_exception(ContractError(f"signal breaks its schema: {exc}"))

    async def close(self) -> None:
        """Stop the consumer and the producer; requests still waiting fail with
        :class:`ClientError`."""
        if self._receiver is not None:
            self._receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._receiver
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(ClientError("the client was closed"))
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def __aenter__(self) -> AsyncSignalClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class SignalClient:
    """:class:`AsyncSignalClient` for blocking code: it runs on an event loop in a thread of
    its own, and ``request`` may be called from any number of threads at once::

        with SignalClient(Endpoint.load()) as client:
            signal = client.request("AAPL", features, timeout_s=2.0)
    """

    def __init__(self, endpoint: Endpoint, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="signal-client", daemon=True
        )
        self._thread.start()
        self._client = AsyncSignalClient(endpoint, **options)
        try:
            self._call(self._client.start())
        except BaseException:
            self._stop_loop()
            raise

    def request(
        self,
        key: str,
        features: Mapping[str, float],
        timeout_s: float | None = None,
        **fields: Any,
    ) -> SignalMessage:
        """Send a signal request and return its signal (see :meth:`AsyncSignalClient.request`)."""
        return self._call(self._client.request(key, features, timeout_s, **fields))

    def close(self) -> None:
        """Stop the client and its thread."""
        try:
            self._call(self._client.close())
        finally:
            self._stop_loop()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> SignalClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _fail_on_error(waiter: asyncio.Future, delivery: asyncio.Future) -> None:
    """Fail ``waiter`` with the error of a request's failed ``delivery`` (the error is read in
    any case, so asyncio never reports it as never retrieved)."""
    if delivery.cancelled():
        return
    error = delivery.exception()
    if error is not None and not waiter.done():
        waiter.set_exception(ClientError(f"the request was not delivered: {error!r}"))


def _signal_ends(endpoint: Endpoint) -> dict[int, int]:
    """The next offset of every ``signals`` partition, from a fetch (blocking)."""
    try:
        with TopicReader(endpoint.kafka, endpoint.topics.signals, timeout_s=30.0) as reader:
            reader.seek()  # probe from offset 0: never ask the broker to reset a position
            return reader.high_watermarks()
    except Exception as exc:
        raise ClientError(
            f"cannot read topic {endpoint.topics.signals!r}: {type(exc).__name__}: {exc}"
        ) from exc
