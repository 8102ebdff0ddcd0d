"""Fixtures giving each contract suite every adapter of its port in turn (see ``backends``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.redis_connection import RedisConnection
from streams.memory_sender import MemorySender
from tests.contract.backends import (
    CoordinationBackend,
    PointerBackend,
    SenderBackend,
    StateBackend,
)

#: Every backend of the Redis ports: the in-memory twin, one Redis, a Redis Cluster.
REDIS_BACKENDS = ["memory", "redis", "redis-cluster"]


def _redis(request: pytest.FixtureRequest) -> RedisConnection | None:
    """The session's embedded Redis or Redis Cluster for the param (started on first use)."""
    if request.param == "redis":
        return request.getfixturevalue("endpoints").redis
    if request.param == "redis-cluster":
        return request.getfixturevalue("redis_cluster")
    return None


@pytest.fixture(params=REDIS_BACKENDS)
def pointer_backend(request: pytest.FixtureRequest) -> PointerBackend:
    """Each active-pointer adapter in turn."""
    return PointerBackend(request.param, redis=_redis(request))


@pytest.fixture(params=REDIS_BACKENDS)
def backend(request: pytest.FixtureRequest) -> StateBackend:
    """Each state-store adapter in turn."""
    return StateBackend(request.param, redis=_redis(request))


@pytest.fixture(params=REDIS_BACKENDS)
def coordination(request: pytest.FixtureRequest) -> Iterator[CoordinationBackend]:
    """Each registry / retrainer-coordination adapter in turn."""
    backend = CoordinationBackend(request.param, redis=_redis(request))
    yield backend
    backend.close()


@pytest.fixture(params=["memory", "aiokafka", "faust"])
def senders(request: pytest.FixtureRequest) -> SenderBackend:
    """Each sender adapter in turn (the Kafka ones on the session's embedded broker)."""
    if request.param == "memory":
        return SenderBackend("memory", memory=MemorySender())
    return SenderBackend(request.param, request.getfixturevalue("endpoints").kafka)
