"""Validating messages seen on the topics against the published JSON Schemas (tests' helper)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from streams.schemas import all_schemas


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(all_schemas()[name])


def assert_valid(name: str, messages: Iterable[dict[str, Any]], closed: bool = True) -> int:
    """Assert every message validates against schema ``name`` and (``closed``: what streamlearn
    writes) names only its fields; returns how many were checked."""
    validator = _validator(name)
    known = set(all_schemas()[name]["properties"])
    count = 0
    for message in messages:
        problems = [error.message for error in validator.iter_errors(message)]
        assert problems == [], (name, problems, message)
        assert not closed or set(message) <= known, (name, set(message) - known)
        count += 1
    return count
