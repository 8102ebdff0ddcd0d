"""Typed, validated settings shared by every layer (app, streams, models)."""

from config.settings import (
    DEFAULT_FEATURES,
    Settings,
    SettingsError,
    env_name,
    load_settings,
)

__all__ = ["DEFAULT_FEATURES", "Settings", "SettingsError", "env_name", "load_settings"]
