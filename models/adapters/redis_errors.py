"""Redis errors in the ports' language: an unreachable or failing Redis is a ``ConnectionError``
(an ``OSError``), so callers outside the adapters never import redis-py to handle an outage."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from redis.exceptions import RedisClusterException, RedisError

#: What redis-py raises when Redis cannot answer. ``RedisClusterException`` is not a
#: ``RedisError``: the cluster client raises it when no node is reachable.
REDIS_ERRORS = (RedisError, RedisClusterException)

P = ParamSpec("P")
T = TypeVar("T")


def as_connection_errors(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Re-raise any Redis error escaping ``method`` as ``ConnectionError`` (cause kept)."""

    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except REDIS_ERRORS as exc:
            raise ConnectionError(f"redis: {type(exc).__name__}: {exc}") from exc

    return translated
