"""Adapters of the models' ports: Redis (production) and in-memory twins (fast tests).

The only modules of ``models`` that may import a Redis client (enforced by import-linter, see
``pyproject.toml``); only these know the Redis key layout.
"""
