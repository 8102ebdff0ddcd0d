"""Fixtures giving each contract suite every adapter of its port in turn (see ``backends``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.memory_sender import MemorySender
from tests.contract.backends import (
    CoordinationBackend,
    PointerBackend,
    SenderBackend,
    StateBackend,
)


@pytest.fixture(params=["memory", "redis"])
def pointer_backend(request: pytest.FixtureRequest) -> Iterator[PointerBackend]:
    """Each active-pointer adapter in turn."""
    if request.param == "redis":
        backend = PointerBackend("redis", request.getfixturevalue("endpoints").redis_url)
    else:
        backend = PointerBackend("memory")
    yield backend


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[StateBackend]:
    """Each state-store adapter in turn."""
    if request.param == "redis":
        yield StateBackend("redis", redis_url=request.getfixturevalue("endpoints").redis_url)
    else:
        yield StateBackend("memory")


@pytest.fixture(params=["memory", "redis"])
def coordination(request: pytest.FixtureRequest) -> Iterator[CoordinationBackend]:
    """Each registry / retrainer-coordination adapter in turn."""
    if request.param == "redis":
        backend = CoordinationBackend("redis", request.getfixturevalue("endpoints").redis_url)
    else:
        backend = CoordinationBackend("memory")
    yield backend
    backend.close()


@pytest.fixture(params=["memory", "aiokafka", "faust"])
def senders(request: pytest.FixtureRequest) -> SenderBackend:
    """Each sender adapter in turn (the Kafka ones on the session's embedded broker)."""
    if request.param == "memory":
        return SenderBackend("memory", _memory=MemorySender())
    return SenderBackend(request.param, request.getfixturevalue("endpoints").kafka_bootstrap)
