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


def _redis_url(request: pytest.FixtureRequest) -> str | None:
    """The session's embedded Redis for the ``redis`` param (started on first use), else None."""
    return request.getfixturevalue("endpoints").redis.url if request.param == "redis" else None


@pytest.fixture(params=["memory", "redis"])
def pointer_backend(request: pytest.FixtureRequest) -> PointerBackend:
    """Each active-pointer adapter in turn."""
    return PointerBackend(request.param, redis_url=_redis_url(request))


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> StateBackend:
    """Each state-store adapter in turn."""
    return StateBackend(request.param, redis_url=_redis_url(request))


@pytest.fixture(params=["memory", "redis"])
def coordination(request: pytest.FixtureRequest) -> Iterator[CoordinationBackend]:
    """Each registry / retrainer-coordination adapter in turn."""
    backend = CoordinationBackend(request.param, redis_url=_redis_url(request))
    yield backend
    backend.close()


@pytest.fixture(params=["memory", "aiokafka", "faust"])
def senders(request: pytest.FixtureRequest) -> SenderBackend:
    """Each sender adapter in turn (the Kafka ones on the session's embedded broker)."""
    if request.param == "memory":
        return SenderBackend("memory", memory=MemorySender())
    return SenderBackend(request.param, request.getfixturevalue("endpoints").kafka)
