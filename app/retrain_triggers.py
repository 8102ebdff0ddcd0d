"""The retrainer's own triggers at work: a schedule and an outcome count (``models.triggers``
decides), turned into requests on ``retrain-requests`` -- the path and the gate every other
retrain takes, so a triggered retrain is announced, deduplicated and audited the same way.

Only the leading retrainer runs them. A request is enqueued before its mark is stored: a crash
between the two repeats the request (it merges with the first into one retrain, or the
cooldown drops it) rather than losing it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from models.coordination import RetrainerState
from models.triggers import OUTCOMES_SEEN, Trigger, TriggerConfig, due_triggers
from streams.kafka_connection import KafkaConnection
from streams.reader import TopicReader
from streams.retrain_requests import retrain_request

log = logging.getLogger(__name__)


class TriggerRunner:
    """Checks the triggers every ``check_s`` and enqueues the retrains they ask for."""

    def __init__(
        self,
        config: TriggerConfig,
        kafka: KafkaConnection,
        outcomes_topic: str,
        state: RetrainerState,
        check_s: float,
        on_fired: Callable[[Trigger], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._kafka = kafka
        self._topic = outcomes_topic
        self._state = state
        self._check_s = check_s
        self._on_fired = on_fired
        self._clock = clock
        self._reader: TopicReader | None = None
        self._checked_at = float("-inf")

    @property
    def active(self) -> bool:
        """Whether any trigger is configured."""
        return self.config.schedule is not None or self.config.every_outcomes is not None

    def check(self, enqueue: Callable[[dict[str, Any]], None]) -> list[Trigger]:
        """Fire what is due (at most once per ``check_s``): each trigger's request goes to
        ``enqueue``, then the marks are stored."""
        now = self._clock()
        if not self.active or now - self._checked_at < self._check_s:
            return []
        self._checked_at = now
        outcomes = self.outcome_count() if self.config.every_outcomes is not None else None
        fired, marks = due_triggers(self.config, now, outcomes, self._state.trigger_marks())
        for trigger in fired:
            enqueue(retrain_request(trigger.requested_by, trigger.reason))
            if self._on_fired is not None:
                self._on_fired(trigger)
        self._state.set_trigger_marks(marks)
        return fired

    def note_retrain(self) -> None:
        """A retrain (of any origin) is reading its window: count new outcomes from here."""
        if self.config.every_outcomes is None:
            return
        outcomes = self.outcome_count()
        if outcomes is not None:
            self._state.set_trigger_marks({OUTCOMES_SEEN: outcomes})

    def outcome_count(self) -> int | None:
        """Outcomes the topic holds (the sum of its partitions' ends), None if the broker did
        not say (the volume trigger then waits for the next check)."""
        try:
            if self._reader is None:
                self._reader = TopicReader(self._kafka, self._topic, timeout_s=10.0)
            return sum(self._reader.high_watermarks().values())
        except Exception as exc:
            log.warning("outcome count not read", extra={"error": repr(exc)})
            self.close()
            return None

    def close(self) -> None:
        """Close the reader (a new one is opened when needed)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
