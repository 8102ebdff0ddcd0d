"""Optional libraries behind package extras: imported only when a setting asks for them, and
a missing one is one line naming the extra (``pip install 'streamlearn[tuning]'``)."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(RuntimeError):
    """A setting needs a library that is not installed (the message names the extra)."""


def optional_module(
    module: str,
    needed_by: str,
    extra: str | None,
    error: type[MissingExtraError] = MissingExtraError,
) -> ModuleType:
    """``module`` imported, or ``error``: "<needed_by> needs <library>: pip install
    'streamlearn[<extra>]'"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        library = module.split(".", maxsplit=1)[0]
        raise error(f"{needed_by} needs {library}: pip install 'streamlearn[{extra}]'") from None
