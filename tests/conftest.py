"""Shared fixtures: settings factories (no services needed)."""

from __future__ import annotations

import pytest

from config import Settings, load_settings


@pytest.fixture
def settings() -> Settings:
    """Default settings, unaffected by the caller's environment."""
    return load_settings(environ={})
