"""Integration fixtures: one broker + Redis per session, one isolated deployment per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.embedded import Endpoints
from tests.integration.infra import Deployment, make_deployment


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def deploy(endpoints: Endpoints, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """Factory of isolated deployments; their workers are stopped after the test."""
    made: list[Deployment] = []

    def factory(**groups: dict) -> Deployment:
        deployment = make_deployment(endpoints, tmp_path / f"store-{len(made)}", **groups)
        deployment.create_topics()
        made.append(deployment)
        return deployment

    yield factory
    for deployment in made:
        deployment.close()
