"""Shared fixtures: settings, and the session's broker, Redis, Redis Cluster and S3 (each
started on first use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.embedded import Endpoints
from app.redis_connection import RedisConnection
from config import Settings, load_settings
from tests.object_store import S3Server, s3_server
from tests.redis_cluster import redis_cluster as start_redis_cluster


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    """One embedded broker and Redis for the whole session (or testcontainers, opt-in)."""
    from tests.integration.infra import session_infrastructure

    with session_infrastructure() as started:
        yield started


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """An S3-compatible server (moto's) for the whole session, started on first use."""
    with s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisConnection]:
    """A local three-master Redis Cluster for the whole session, started on first use."""
    with start_redis_cluster() as connection:
        yield connection


@pytest.fixture
def settings() -> Settings:
    """Default settings, unaffected by the caller's environment."""
    return load_settings(environ={})
