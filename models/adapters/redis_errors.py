"""Redis errors in the ports' language: an unreachable or failing Redis is a ``ConnectionError``
(an ``OSError``), so callers outside the adapters never import redis-py to handle an outage."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from redis.exceptions import RedisError

P = ParamSpec("P")
T = TypeVar("T")


def as_connection_errors(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Re-raise any ``RedisError`` escaping ``method`` as ``ConnectionError`` (cause kept)."""

    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except RedisError as exc:
            raise ConnectionError(f"redis: {type(exc).__name__}: {exc}") from exc

    return translated
