"""Names of every Redis key streamlearn writes, in one place, under one namespace."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    """Key names under a namespace, so deployments and tests can share one Redis safely."""

    namespace: str

    @property
    def active_model(self) -> str:
        """String: the version id of the active batch model."""
        return f"{self.namespace}:registry:active"

    def partition_state(self, topic: str, partition: int) -> str:
        """Hash: applied offset, fencing epoch and every key's state of one input partition."""
        return f"{self.namespace}:online:{topic}:{partition}"

    def partition_state_pattern(self, topic: str) -> str:
        """SCAN pattern matching :meth:`partition_state` keys of a topic."""
        return f"{self.namespace}:online:{topic}:*"
