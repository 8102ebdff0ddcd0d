"""The redis-py clients the Redis adapters accept: one server's, or a Redis Cluster's."""

from __future__ import annotations

from typing import TypeAlias

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

#: A blocking client (registry, retrainer state, CLI).
RedisClient: TypeAlias = redis.Redis | RedisCluster
#: An asyncio client (workers: state store, pointer, retrain guard).
AsyncRedisClient: TypeAlias = aioredis.Redis | AsyncRedisCluster
