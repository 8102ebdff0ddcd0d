"""The unit suite runs with no broker and no Redis: asking for them here is an error."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def endpoints() -> None:
    """Unit tests use the in-memory twins (``app.composition.memory_ports``), never services."""
    raise pytest.UsageError("unit tests must not use the broker or Redis; use the twins")
