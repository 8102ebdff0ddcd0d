"""Dead letters: a malformed record, its reason and where it came from, for one input topic."""

from __future__ import annotations

from collections.abc import Callable

from streams.contracts import encode_dead_letter
from streams.records import InputRecord, OutgoingRecord


class DeadLetterer:
    """Builds dead-letter records for one input topic."""

    def __init__(self, source_topic: str, dead_letter_topic: str, clock: Callable[[], int]) -> None:
        self.source_topic = source_topic
        self.dead_letter_topic = dead_letter_topic
        self._clock = clock

    def __call__(self, record: InputRecord, reason: str) -> OutgoingRecord:
        """The dead letter of ``record``, keeping its exact bytes and the reason it failed."""
        value = encode_dead_letter(
            record.value,
            record.key,
            reason,
            self.source_topic,
            record.partition,
            record.offset,
            self._clock(),
        )
        return OutgoingRecord(self.dead_letter_topic, record.key, value)
