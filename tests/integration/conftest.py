"""Integration fixtures: one broker + Redis per session, one isolated deployment per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.embedded import Endpoints
from tests.integration.infra import Deployment, make_deployment
from tests.integration.tls import TlsBroker
from tests.integration.tls import tls_broker as start_tls_broker


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
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """A broker reachable only over TLS (see ``tests/integration/tls.py``), one per session."""
    with start_tls_broker(tmp_path_factory.mktemp("tls")) as broker:
        yield broker


@pytest.fixture
def deploy_over_tls(
    endpoints: Endpoints, tls_broker: TlsBroker, tmp_path: Path
) -> Iterator[Callable[..., Deployment]]:
    """:func:`deploy` on the TLS-only broker (and the session's Redis)."""
    yield from _factory(Endpoints(tls_broker.kafka, endpoints.redis_url), tmp_path)
