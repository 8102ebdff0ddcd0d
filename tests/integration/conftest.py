"""Integration fixtures: one broker + Redis per session, one isolated deployment per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.embedded import Endpoints
from app.redis_connection import RedisConnection
from tests.integration.infra import Deployment, make_deployment
from tests.integration.tls import PrivateCa, SecuredRedis, TlsBroker
from tests.integration.tls import secured_redis as start_secured_redis
from tests.integration.tls import tls_broker as start_tls_broker

#: The secured Redis's password: unique, so finding it anywhere in output is a leak.
REDIS_PASSWORD = f"pw-{uuid.uuid4().hex}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def _factory(endpoints: Endpoints, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    made: list[Deployment] = []

    def factory(**groups: dict) -> Deployment:
        deployment = make_deployment(endpoints, tmp_path / f"store-{len(made)}", **groups)
        deployment.create_topics()
        made.append(deployment)
        return deployment

    yield factory
    for deployment in made:
        deployment.close()


@pytest.fixture
def deploy(endpoints: Endpoints, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """Factory of isolated deployments; their workers are stopped after the test."""
    yield from _factory(endpoints, tmp_path)


@pytest.fixture(scope="session")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCa:
    """The private CA that signs the secured services' certificates."""
    return PrivateCa.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def tls_broker(
    tmp_path_factory: pytest.TempPathFactory, private_ca: PrivateCa
) -> Iterator[TlsBroker]:
    """A broker reachable only over TLS (see ``tests/integration/tls.py``), one per session."""
    with start_tls_broker(tmp_path_factory.mktemp("tls"), private_ca) as broker:
        yield broker


@pytest.fixture(scope="session")
def secured_redis(
    tmp_path_factory: pytest.TempPathFactory, private_ca: PrivateCa
) -> Iterator[SecuredRedis]:
    """A Redis reachable only over TLS, as an ACL user with a password, one per session."""
    with start_secured_redis(tmp_path_factory.mktemp("redis"), private_ca, REDIS_PASSWORD) as found:
        yield found


@pytest.fixture
def deploy_secured(
    tls_broker: TlsBroker, secured_redis: SecuredRedis, tmp_path: Path
) -> Iterator[Callable[..., Deployment]]:
    """:func:`deploy` on the TLS-only broker and the TLS-only, password-protected Redis."""
    yield from _factory(Endpoints(tls_broker.kafka, secured_redis.redis), tmp_path)


@pytest.fixture
def deploy_cluster(
    endpoints: Endpoints, redis_cluster: RedisConnection, tmp_path: Path
) -> Iterator[Callable[..., Deployment]]:
    """:func:`deploy` with every Redis client (workers, CLI, test reads) on the session's
    three-master Redis Cluster."""
    yield from _factory(Endpoints(endpoints.kafka, redis_cluster), tmp_path)
