"""Names of every Redis key streamlearn writes, in one place, under one namespace.

Laid out for Redis Cluster, where one MULTI/EXEC, WATCH or Lua script may only touch keys of
one hash slot:

- A partition's learner state (every key's model, its outbox of drift alerts and retrain
  requests, the applied offset and the fencing epoch) is *one* hash, so the script that
  checkpoints it touches one key, and partitions spread over the cluster's slots.
- The registry (active and staged pointers, history, lock) and the retrainer's fencing counter,
  which a registry change WATCHes, share the hash tag ``{<namespace>:registry}``: one slot.
- Everything else is read and written one key at a time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    """Key names under a namespace, so deployments and tests can share one Redis safely."""

    namespace: str

    @property
    def registry_tag(self) -> str:
        """The hash tag every registry key carries (one cluster slot for all of them)."""
        return f"{{{self.namespace}:registry}}"

    @property
    def active_model(self) -> str:
        """String: the version id of the active batch model."""
        return f"{self.registry_tag}:active"

    @property
    def staged_model(self) -> str:
        """String: the version id waiting for a manual promotion."""
        return f"{self.registry_tag}:staged"

    @property
    def registry_history(self) -> str:
        """List: JSON registry events, oldest first."""
        return f"{self.registry_tag}:history"

    @property
    def registry_lock(self) -> str:
        """Lock serialising registry changes."""
        return f"{self.registry_tag}:lock"

    @property
    def retrainer_offset(self) -> str:
        """String: next ``retrain-requests`` offset the retrainer will read."""
        return f"{self.namespace}:retrainer:offset"

    @property
    def retrainer_last_finished(self) -> str:
        """String: epoch seconds when the last retrain finished (for the cooldown)."""
        return f"{self.namespace}:retrainer:last-finished"

    @property
    def retrainer_triggers(self) -> str:
        """Hash: where the retrain triggers stand (next scheduled time, outcomes counted)."""
        return f"{self.namespace}:retrainer:triggers"

    @property
    def notify_offsets(self) -> str:
        """Hash: ``streamlearn notify``'s next offset per ``topic:partition``."""
        return f"{self.namespace}:notify:offsets"

    def dlq_replayed(self, dead_letter_topic: str) -> str:
        """Hash: letters of ``dead_letter_topic`` replayed by ``dlq replay`` (partition:offset
        -> when and where to)."""
        return f"{self.namespace}:dlq:replayed:{dead_letter_topic}"

    def notify_sent(self, target: str, notice_id: str) -> str:
        """String with a TTL: ``target`` (a webhook name) got notice ``notice_id``."""
        return f"{self.namespace}:notify:sent:{target}:{notice_id}"

    @property
    def retrainer_leader(self) -> str:
        """Lock held by the one retrainer that acts on requests."""
        return f"{self.namespace}:retrainer:leader"

    @property
    def retrainer_fence(self) -> str:
        """Counter: the fencing token, incremented by each retrainer that becomes leader
        (in the registry's slot: a registry change WATCHes it)."""
        return f"{self.registry_tag}:fence"

    @property
    def drift_retrain_guard(self) -> str:
        """String with a TTL: the drift retrain request that won; others are dropped."""
        return f"{self.namespace}:drift:retrain-guard"

    def registry_keys(self) -> tuple[str, ...]:
        """Every key of the registry (what ``models rebuild`` restores)."""
        return (self.active_model, self.staged_model, self.registry_history)

    def legacy_names(self) -> dict[str, str]:
        """Names the registry keys had before they carried a hash tag -> their names now
        (what an upgraded single Redis still holds until the registry adopts them)."""
        old = f"{self.namespace}:registry"
        return {
            f"{old}:active": self.active_model,
            f"{old}:staged": self.staged_model,
            f"{old}:history": self.registry_history,
            f"{self.namespace}:retrainer:fence": self.retrainer_fence,
        }

    def partition_state(self, topic: str, partition: int) -> str:
        """Hash: applied offset, fencing epoch and every key's state of one input partition."""
        return f"{self.namespace}:online:{topic}:{partition}"

    def quarantine(self, topic: str, partition: int) -> str:
        """Hash: key states of a partition that could not be restored, and why (for people)."""
        return f"{self.namespace}:quarantine:{topic}:{partition}"

    def partition_state_pattern(self, topic: str) -> str:
        """SCAN pattern matching :meth:`partition_state` keys of a topic."""
        return f"{self.namespace}:online:{topic}:*"
