"""Dead letters: a malformed record, its reason and where it came from, for one input topic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streams.contracts import ContractError, encode_dead_letter
from streams.records import InputRecord, OutgoingRecord


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a record is not used: the one-line reason and its kind
    (:data:`streams.messages.LETTER_KINDS`)."""

    kind: str
    reason: str

    @classmethod
    def of(cls, error: ContractError) -> Refusal:
        """The refusal a contract error stands for."""
        return cls(error.kind, error.reason)


class DeadLetterer:
    """Builds dead-letter records for one input topic, each within the broker's record limit.

    A letter keeps the source record's key as its own Kafka key when that key is within
    ``max_key_bytes`` (so a key's letters stay in order in one partition); an oversized key is
    not repeated there (the letter body still says where the original is).
    """

    def __init__(
        self,
        source_topic: str,
        dead_letter_topic: str,
        clock: Callable[[], int],
        max_key_bytes: int = 1024,
        max_message_bytes: int = 1_000_000,
        on_letter: Callable[[str], None] | None = None,
    ) -> None:
        self.source_topic = source_topic
        self.dead_letter_topic = dead_letter_topic
        self._clock = clock
        self._max_key_bytes = max_key_bytes
        self._max_message_bytes = max_message_bytes
        self._on_letter = on_letter

    def __call__(self, record: InputRecord, refusal: Refusal) -> OutgoingRecord:
        """The dead letter of ``record``, keeping its exact bytes and why it was refused
        (``on_letter`` hears the refusal's kind: the metrics count letters by it)."""
        if self._on_letter is not None:
            self._on_letter(refusal.kind)
        key = record.key
        if key is not None and len(key) > self._max_key_bytes:
            key = None
        room = self._max_message_bytes - (0 if key is None else len(key))
        value = encode_dead_letter(
            record.value,
            record.key,
            refusal.reason,
            self.source_topic,
            record.partition,
            record.offset,
            self._clock(),
            max_bytes=room,
            kind=refusal.kind,
        )
        return OutgoingRecord(self.dead_letter_topic, key, value)
