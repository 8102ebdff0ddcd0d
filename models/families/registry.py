"""The decorator registry of model families: ``@register_family`` on a
:class:`~models.families.contract.ModelFamily` subclass makes it selectable by name
(``retrain.family``) and loadable by its stored ``model_format``."""

from __future__ import annotations

from typing import TypeVar

from models.families.contract import ModelFamily

F = TypeVar("F", bound=type[ModelFamily])

_FAMILIES: dict[str, type[ModelFamily]] = {}


class UnknownFamilyError(ValueError):
    """No family of that name or model format is registered."""


def register_family(cls: F) -> F:
    """Class decorator: register a family under its ``name`` (names are unique)."""
    known = _FAMILIES.get(cls.name)
    if known is not None and known is not cls:
        raise ValueError(f"model family {cls.name!r} is registered twice")
    _FAMILIES[cls.name] = cls
    return cls


def family_names() -> tuple[str, ...]:
    """Every registered family, sorted."""
    return tuple(sorted(_FAMILIES))


def family(name: str) -> ModelFamily:
    """The family called ``name``."""
    cls = _FAMILIES.get(name)
    if cls is None:
        raise UnknownFamilyError(
            f"unknown model family {name!r}; known: {', '.join(family_names())}"
        )
    return cls()


def family_for_format(model_format: str) -> ModelFamily:
    """The family whose artifacts have ``model_format`` (from a version's metadata)."""
    for cls in _FAMILIES.values():
        if cls.model_format == model_format:
            return cls()
    raise UnknownFamilyError(f"no model family stores the format {model_format!r}")
