"""Shared fixtures: settings, and the session's broker + Redis (started on first use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.embedded import Endpoints
from config import Settings, load_settings


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    """One embedded broker and Redis for the whole session (or testcontainers, opt-in)."""
    from tests.integration.infra import session_infrastructure

    with session_infrastructure() as started:
        yield started


@pytest.fixture
def settings() -> Settings:
    """Default settings, unaffected by the caller's environment."""
    return load_settings(environ={})
