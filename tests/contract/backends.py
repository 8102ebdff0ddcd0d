"""The backends the contract suites run on: each port's adapters, and test-only access to
what is behind them. (Fixtures choosing them: ``conftest.py``.)

Every adapter of a port, behind one fixture: the contract suites run once per adapter.

The in-memory twins need nothing; the Redis adapters run on the session's embedded Redis and on
its Redis Cluster (each started on first use). A twin that drifts from its real adapter fails
the same test the adapter passes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from app.redis_connection import RedisConnection
from models.adapters.memory_coordination import (
    MemoryNotifierState,
    MemoryRetrainerState,
    MemoryRetrainGuard,
)
from models.adapters.memory_pointer import MemoryPointer
from models.adapters.memory_registry import MemoryRegistry
from models.adapters.memory_state_store import MemoryStateStore
from models.adapters.redis_coordination import (
    RedisNotifierState,
    RedisRetrainerState,
    RedisRetrainGuard,
)
from models.adapters.redis_keys import RedisKeys
from models.adapters.redis_pointer import RedisPointer
from models.adapters.redis_registry import RedisRegistry
from models.adapters.redis_state_store import RedisStateStore
from models.coordination import NotifierState, RetrainerState, RetrainGuard
from models.model_source import ActivePointer
from models.registry import RegistryBackend
from models.state_store import StateStore
from streams.checkpointing import Sender
from streams.kafka_connection import KafkaConnection
from streams.memory_sender import MemorySender

TOPIC = "outcomes"


@dataclass
class StateBackend:
    """Stores sharing one backend (one per simulated worker), plus test-only access to it."""

    name: str
    namespace: str = field(default_factory=lambda: f"contract-{uuid.uuid4().hex[:8]}")
    redis: RedisConnection | None = None
    _memory: MemoryStateStore | None = None
    _clients: list[Any] = field(default_factory=list)

    def store(self) -> StateStore:
        """A store as one worker holds it (its own connection, the same data)."""
        if self.name == "memory":
            if self._memory is None:
                self._memory = MemoryStateStore()
            return self._memory
        client = self.redis.async_client()
        self._clients.append(client)
        return RedisStateStore(client, RedisKeys(self.namespace), TOPIC)

    async def corrupt(self, partition: int, states: dict[str, bytes]) -> None:
        """Overwrite stored key states behind the store's back (what a bug or an old version
        could have left)."""
        if self._memory is not None:
            self._memory.hashes[partition]["states"].update(states)
            return
        key = RedisKeys(self.namespace).partition_state(TOPIC, partition)
        await self._clients[0].hset(key, mapping={f"k:{k}": v for k, v in states.items()})

    async def quarantined(self, partition: int) -> dict[str, tuple[bytes, str]]:
        """What the store set aside: key -> (blob, reason)."""
        if self._memory is not None:
            return {k: v for (p, k), v in self._memory.quarantined.items() if p == partition}
        raw = await self._clients[0].hgetall(RedisKeys(self.namespace).quarantine(TOPIC, partition))
        return {
            name.decode(): (blob, raw[name + b":reason"].decode())
            for name, blob in raw.items()
            if not name.endswith(b":reason")
        }

    async def close(self) -> None:
        """Release connections."""
        for client in self._clients:
            await client.aclose()


@dataclass
class PointerBackend:
    """An active-version pointer, a way to set it (as the registry does) and to break it."""

    name: str
    redis: RedisConnection | None = None
    namespace: str = field(default_factory=lambda: f"contract-{uuid.uuid4().hex[:8]}")
    _client: Any = None
    _memory: MemoryPointer | None = None

    def pointer(self, reachable: bool = True) -> ActivePointer:
        """The adapter; ``reachable=False`` gives one whose backend cannot answer."""
        if self.name == "memory":
            if self._memory is None:
                self._memory = MemoryPointer()
            self._memory.fail = not reachable
            return self._memory
        redis = self.redis if reachable else replace(self.redis, url="redis://127.0.0.1:1/0")
        client = redis.async_client(socket_connect_timeout=1)
        self._client = client
        return RedisPointer(client, RedisKeys(self.namespace))

    async def activate(self, version: str) -> None:
        """Point at ``version``, as a registry change does."""
        await self._point("active", version)

    async def stage(self, version: str) -> None:
        """Stage ``version``, as the registry does."""
        await self._point("staged", version)

    async def _point(self, role: str, version: str) -> None:
        if self._memory is not None:
            setattr(self._memory, "version" if role == "active" else "staged_version", version)
            return
        keys = RedisKeys(self.namespace)
        client = self.redis.async_client()
        await client.set(keys.active_model if role == "active" else keys.staged_model, version)
        await client.aclose()

    async def close(self) -> None:
        """Release the connection."""
        if self._client is not None:
            await self._client.aclose()


def run_then_close(
    backend: StateBackend | PointerBackend, scenario: Callable[[], Awaitable]
) -> None:
    """Run an async scenario, then release the backend's connections in the same loop."""

    async def wrapped() -> None:
        try:
            await scenario()
        finally:
            await backend.close()

    asyncio.run(wrapped())


@dataclass
class CoordinationBackend:
    """Registry and retrainer-coordination adapters sharing one backend (one per simulated
    process: ``registry()`` / ``retrainer_state()`` called twice give two processes' views)."""

    name: str
    redis: RedisConnection | None = None
    namespace: str = field(default_factory=lambda: f"contract-{uuid.uuid4().hex[:8]}")
    _memory: dict[str, Any] = field(default_factory=dict)
    _clients: list[Any] = field(default_factory=list)

    def _client(self) -> Any:
        client = self.redis.client()
        self._clients.append(client)
        return client

    def registry(self) -> RegistryBackend:
        """A registry backend."""
        if self.name == "memory":
            return self._memory.setdefault("registry", MemoryRegistry())
        return RedisRegistry(self._client(), RedisKeys(self.namespace))

    def retrainer_state(self) -> RetrainerState:
        """A retrainer's coordination state."""
        if self.name == "memory":
            return self._memory.setdefault("retrainer", MemoryRetrainerState())
        return RedisRetrainerState(self._client(), RedisKeys(self.namespace))

    def notifier_state(self) -> NotifierState:
        """``streamlearn notify``'s state."""
        if self.name == "memory":
            return self._memory.setdefault("notifier", MemoryNotifierState())
        return RedisNotifierState(self._client(), RedisKeys(self.namespace))

    def guard(self) -> RetrainGuard:
        """A worker's drift-retrain guard (async)."""
        if self.name == "memory":
            return self._memory.setdefault("guard", MemoryRetrainGuard())
        client = self.redis.async_client()
        self._clients.append(client)
        return RedisRetrainGuard(client, RedisKeys(self.namespace))

    def close(self) -> None:
        """Release connections (sync clients; async ones are closed by their loop's end)."""
        for client in self._clients:
            if hasattr(client, "aclose"):
                continue
            client.close()


@dataclass
class SenderBackend:
    """Senders of one kind, fresh topics for them, and a way to read back what arrived."""

    name: str
    kafka: KafkaConnection | None = None
    memory: MemorySender | None = None
    _closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    async def topic(self, partitions: int) -> str:
        """A new, empty topic with ``partitions`` partitions."""
        name = f"contract-{uuid.uuid4().hex[:10]}"
        if self.memory is not None:
            self.memory.add_topic(name, partitions)
            return name
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(**self.kafka.client_options(), client_id="contract")
        try:
            admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            admin.close()
        return name

    async def sender(self) -> Sender:
        """The adapter, started."""
        if self.memory is not None:
            return self.memory
        if self.name == "aiokafka":
            from aiokafka import AIOKafkaProducer

            from streams.aiokafka_engine import AiokafkaSender

            producer = AIOKafkaProducer(**self.kafka.client_options(), acks="all", linger_ms=1)
            await producer.start()
            self._closers.append(producer.stop)
            return AiokafkaSender(producer)
        from app.transport import StreamlearnApp
        from streams.agents import FaustSender

        app = StreamlearnApp(
            f"contract-{uuid.uuid4().hex[:8]}",
            **self.kafka.faust(),
            autodiscover=False,
            web_enabled=False,
            producer_acks=-1,
        )
        await app.producer.start()
        self._closers.append(app.producer.stop)
        return FaustSender(app)

    async def delivered(self, topic: str) -> list[tuple[int, bytes | None, bytes]]:
        """What is on ``topic``: (partition, key, value), in offset order per partition."""
        if self.memory is not None:
            return self.memory.delivered(topic)
        from streams.reader import read_topic

        records = await asyncio.get_running_loop().run_in_executor(
            None, read_topic, self.kafka, topic
        )
        return [(r.partition, r.key, r.value) for r in records]

    def run(self, scenario: Callable[[], Awaitable]) -> None:
        """Run an async scenario, then stop the producers in the same loop."""

        async def wrapped() -> None:
            try:
                await scenario()
            finally:
                for close in self._closers:
                    await close()

        asyncio.run(wrapped())
