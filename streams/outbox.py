"""Publishing what drift monitors decided, exactly once, after the state that decided it is safe.

The transactional-outbox pattern: alerts and retrain requests are appended to the key's state,
checkpointed to Redis with it, and only then published; once published they are removed (and
that removal is checkpointed). Entries restored after a crash may or may not have reached the
broker, so they are checked against the tail of their topic first and only sent if absent.
Drift retrain requests are also deduplicated across keys and workers: the first one to win the
:class:`~models.coordination.RetrainGuard` (a Redis ``SET NX`` with a TTL) is sent, the others
are dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import orjson

from models.coordination import RetrainGuard
from streams.alerts import RETRAIN
from streams.checkpointing import Sender
from streams.failpoints import failpoint
from streams.kafka_connection import KafkaConnection
from streams.online_state import OnlineState, OutboxDue
from streams.reader import TopicReader
from streams.records import OutgoingRecord

log = logging.getLogger(__name__)

#: How far back the published check looks on a topic (alerts are rare).
TAIL_RECORDS = 5000


def published_ids(kafka: KafkaConnection, topic: str, wanted: Iterable[str]) -> set[str]:
    """Which of ``wanted`` ids appear in the last records of ``topic`` (blocking)."""
    wanted = set(wanted)
    with TopicReader(kafka, topic) as reader:
        ends = reader.high_watermarks()
        reader.seek({p: max(0, end - TAIL_RECORDS) for p, end in ends.items()})
        found = set()
        for record in reader.read_to_end(ends):
            try:
                message = orjson.loads(record.value)
            except orjson.JSONDecodeError:
                continue
            if isinstance(message, dict):
                found |= {message.get("alert_id"), message.get("request_id")} & wanted
    return found


class OutboxFlusher:
    """Publishes the outbox entries of all loaded keys (call right after a checkpoint)."""

    def __init__(
        self,
        sender: Sender,
        topics: Mapping[str, str],
        kafka: KafkaConnection,
        guard: RetrainGuard,
        retrain_dedupe_s: float,
    ) -> None:
        self._sender = sender
        self._topics = dict(topics)
        self._kafka = kafka
        self._guard = guard
        self._dedupe_s = retrain_dedupe_s
        self.published = 0

    async def flush(self, state: OnlineState, due: Sequence[OutboxDue]) -> int:
        """Publish the entries a written checkpoint covers; returns how many were sent."""
        if not due:
            return 0
        try:
            return await self._publish(due)
        except BaseException:
            for item in due:  # still checkpointed: the next checkpoint takes them again
                state.note_outbox(item.loaded.partition, item.model_key)
            raise

    async def _publish(self, due: Sequence[OutboxDue]) -> int:
        taken = [(item, item.entries()) for item in due]
        entries = [entry for _, batch in taken for entry in batch]
        already = await self._already_published([e for e in entries if e.get("verify")])
        records = []
        for entry in entries:
            if entry["id"] in already:
                continue
            if entry["topic"] == RETRAIN and not await self._guard.claim(
                entry["id"], self._dedupe_s
            ):
                log.info("drift retrain request deduplicated", extra={"request_id": entry["id"]})
                continue
            records.append(
                OutgoingRecord(
                    self._topics[entry["topic"]],
                    entry["key"].encode(),
                    orjson.dumps(entry["value"]),
                )
            )
        failpoint("before-outbox-publish")
        await self._sender.send_all(records)
        await self._sender.flush()
        failpoint("after-outbox-publish")
        for item, batch in taken:
            # Only what was published leaves the outbox: entries queued meanwhile stay (their
            # key is noted for the next checkpoint, which covers them).
            outbox = item.model.outbox
            if outbox[: len(batch)] == batch:
                del outbox[: len(batch)]
            item.loaded.dirty.add(item.model_key)
        self.published += len(records)
        return len(records)

    async def _already_published(self, entries: list[dict]) -> set[str]:
        if not entries:
            return set()
        by_topic: dict[str, set[str]] = defaultdict(set)
        for entry in entries:
            by_topic[self._topics[entry["topic"]]].add(entry["id"])
        loop = asyncio.get_running_loop()
        found: set[str] = set()
        for topic, ids in by_topic.items():
            found |= await loop.run_in_executor(None, published_ids, self._kafka, topic, ids)
        log.info(
            "restored outbox checked against the topics",
            extra={"entries": len(entries), "already_published": len(found)},
        )
        return found
