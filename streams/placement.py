"""Co-partitioning checks: a key's requests must reach the partition that holds its model.

The workers learn a key on the partition its outcomes arrive on and score its requests on the
partition they arrive on, so both producers must place the key alike. The contract says how:
record key = model key, Kafka's default partitioner (murmur2, as the Java client and
``streams.client``; librdkafka's default is CRC32). A request that cannot meet its model is
refused (dead letter ``misrouted``) rather than scored without its online part; an outcome key
placed off the default partitioner is learned (its requests may use the same placement) but
reported, since requests placed by the default partitioner will not meet it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from streams.dead_letters import Refusal
from streams.online_state import OnlineState
from streams.partitioning import partition_for

log = logging.getLogger(__name__)


class Placement:
    """Where the default partitioner puts keys, once the partition count is known (the engine
    sets :attr:`partitions` from its consumer's metadata on assignment; None: nothing is
    checked)."""

    def __init__(self, partitions: int | None = None) -> None:
        self.partitions = partitions

    def expected(self, model_key: str) -> int | None:
        """The partition of ``model_key`` by the default partitioner, or None if unknown."""
        count = self.partitions
        if not count:
            return None
        return partition_for(model_key.encode(), range(count))


class Misrouting:
    """Finds keys whose messages arrive off their partition; reports each key once (a log line
    and ``on_key``, which counts it), up to ``max_reported`` keys."""

    def __init__(
        self,
        placement: Placement,
        on_key: Callable[[str], None],
        max_reported: int = 10_000,
    ) -> None:
        self.placement = placement
        self._on_key = on_key
        self._max_reported = max_reported
        self._reported: set[tuple[str, str]] = set()

    def request_refusal(
        self, state: OnlineState, model_key: str, partition: int, topic: str
    ) -> Refusal | None:
        """Why a request for ``model_key`` on ``partition`` cannot meet its model, or None.

        Misrouted: the key's model is held on another partition of this worker, or the key has
        no model on ``partition`` (claimed here) while the default partitioner places it on
        another one. A key with a model on ``partition`` is never refused.
        """
        loaded = state.partitions.get(partition)
        if loaded is None or model_key in loaded.models:
            return None
        holder = None
        if state.model(model_key) is not None:  # held here, on another partition: which one
            holder = next(p for p, m in state.partitions.items() if model_key in m.models)
        expected = self.placement.expected(model_key)
        if holder is not None:
            where = f"its outcomes are learned on partition {holder}"
        elif expected is not None and expected != partition:
            where = (
                f"Kafka's default partitioner (murmur2) places it on partition {expected}, "
                "where its outcomes are learned"
            )
        else:
            return None
        self._report(topic, model_key, f"request partition {partition}; {where}")
        return Refusal(
            "misrouted",
            f"misrouted: the request for key {model_key!r} arrived on partition {partition} but "
            f"{where}; produce requests and outcomes with the record key = model key and the "
            "default (murmur2) partitioner",
        )

    def check_outcome_key(self, model_key: str, partition: int, topic: str) -> None:
        """Report a new outcome key on a partition the default partitioner would not pick."""
        expected = self.placement.expected(model_key)
        if expected is not None and expected != partition:
            self._report(
                topic,
                model_key,
                f"outcomes on partition {partition}; Kafka's default partitioner (murmur2) "
                f"places the key on partition {expected}, where requests will look for it",
            )

    def _report(self, topic: str, model_key: str, detail: str) -> None:
        marker = (topic, model_key)
        if marker in self._reported or len(self._reported) >= self._max_reported:
            return
        self._reported.add(marker)
        self._on_key(topic)
        log.warning(
            "key off its partition",
            extra={"topic": topic, "model_key": model_key[:80], "detail": detail},
        )
