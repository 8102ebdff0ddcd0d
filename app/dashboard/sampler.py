"""What the dashboard reads, one sample at a time, from Redis and the topics.

* the learner's state in Redis: every key's cumulative prequential sums (read like
  ``streamlearn status`` does, without claiming anything) and each partition's applied offset;
* the ``outcomes`` and ``signal-requests`` ends (fetch high watermarks, right on every broker)
  and the workers' committed request offsets: the lag of both topics;
* ``signals`` published since the previous sample: how many, and the request -> signal latency
  of at most ``signals_per_partition`` of them per partition (a bounded read at any rate);
* new ``drift-alerts`` and ``model-updates`` messages (:meth:`DeploymentSampler.new_events`,
  for the :class:`~app.dashboard.timeline.Timeline`);
* the registry: active and staged versions, and the newest versions' numbers (re-read when a
  model update arrives).

Nothing here writes: any number of dashboards can watch one deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaAdminClient

from app.composition import blocking_redis_client, registry_on, stored_state
from app.dashboard.history import Sample, Totals
from app.embedded import Endpoints
from app.models_cli import version_row
from app.status import group_offsets, snapshots_of
from config import Settings
from models.codec import StateCodecError, summary_of
from models.notifications import Notice, NoticeError, notice_of, record_id
from models.state_store import StateStore
from streams.reader import TopicReader

log = logging.getLogger(__name__)

#: Versions listed on the page (the newest).
VERSIONS_SHOWN = 8


@dataclass(frozen=True)
class Event:
    """A drift alert, recovery or model update, and when it was published (epoch ms)."""

    notice: Notice
    at_ms: int


class DeploymentSampler:
    """Reads one :class:`Sample` at a time (and the events since the last one) from a
    deployment; :meth:`close` releases the connections, and the next sample reopens them."""

    def __init__(
        self,
        settings: Settings,
        endpoints: Endpoints,
        events_limit: int,
        signals_per_partition: int,
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self._events: list[Event] = []
        self.events_limit = events_limit
        self.signals_per_partition = signals_per_partition
        self.registry_view: dict[str, Any] = {"active": None, "staged": None, "versions": []}
        self._readers: dict[str, TopicReader] = {}
        self._admin: KafkaAdminClient | None = None
        self._redis: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state: AsyncExitStack | None = None
        self._store: StateStore | None = None
        self._signal_ends: dict[int, int] | None = None
        self._versions_stale = True

    def _open(self) -> None:
        kafka, topics = self.endpoints.kafka, self.settings.topics
        if self._readers:
            return
        readers = {
            "outcomes": TopicReader(kafka, topics.outcomes, timeout_s=10),
            "requests": TopicReader(kafka, topics.requests, timeout_s=10),
            "signals": TopicReader(kafka, topics.signals, timeout_s=10),
            "alerts": TopicReader(kafka, topics.drift_alerts, timeout_s=10),
            "updates": TopicReader(kafka, topics.model_updates, timeout_s=10),
        }
        self._readers = readers
        for name in ("alerts", "updates"):  # the recent events, then whatever comes
            ends = readers[name].high_watermarks()
            readers[name].seek({p: max(0, end - self.events_limit) for p, end in ends.items()})
        self._admin = KafkaAdminClient(**kafka.client_options(), client_id="streamlearn-dashboard")
        self._redis = blocking_redis_client(self.settings, self.endpoints.redis)
        # The state store is asyncio: one loop and one connection for every sample.
        self._loop = asyncio.new_event_loop()
        self._state = AsyncExitStack()
        self._store = self._loop.run_until_complete(
            self._state.enter_async_context(stored_state(self.settings, self.endpoints.redis))
        )
        self._signal_ends = None
        self._versions_stale = True

    def sample(self) -> Sample:
        """Read the deployment now (opening connections first if needed)."""
        self._open()
        self._read_events()
        self._read_registry()
        assert self._loop is not None and self._store is not None
        snapshots = self._loop.run_until_complete(snapshots_of(self._store))
        keys: dict[str, Totals] = {}
        applied: dict[int, int] = {}
        for partition, snapshot in snapshots.items():
            applied[partition] = snapshot.applied_offset
            for key, blob in snapshot.states.items():
                try:
                    keys[key] = Totals.of_summary(summary_of(blob))
                except (StateCodecError, KeyError, TypeError, ValueError):
                    log.warning("dashboard: unreadable state of key %r skipped", key)
        ends = self._ends("outcomes")
        lag = {
            "outcomes": sum(max(0, end - applied.get(p, -1) - 1) for p, end in ends.items()),
            "requests": self._request_lag(),
        }
        signals, latencies = self._read_signals()
        return Sample(time.time(), keys, lag, latencies, signals)

    def _ends(self, name: str) -> dict[int, int]:
        """A topic's ends now; the reader then waits there, so the next probe fetches little."""
        reader = self._readers[name]
        ends = reader.high_watermarks()
        reader.seek(ends)
        return ends

    def _request_lag(self) -> int | None:
        ends = self._ends("requests")
        assert self._admin is not None
        committed = group_offsets(
            self._admin, self.settings.kafka.consumer_group, self.settings.topics.requests
        )
        if not committed:
            return None  # no worker has committed yet: unknown, not zero
        return sum(max(0, end - max(0, committed.get(p, 0))) for p, end in ends.items())

    def _read_signals(self) -> tuple[int, list[float]]:
        """How many signals were published since the last call, and the latencies (ms) of
        the newest ``signals_per_partition`` of them per partition."""
        reader = self._readers["signals"]
        ends = reader.high_watermarks()
        if self._signal_ends is None:
            reader.seek(ends)  # from now on
            self._signal_ends = ends
            return 0, []
        previous = self._signal_ends
        count = sum(max(0, end - previous.get(p, 0)) for p, end in ends.items())
        reader.seek(
            {
                p: max(previous.get(p, 0), end - self.signals_per_partition)
                for p, end in ends.items()
            }
        )
        latencies = []
        for record in reader.read_to_end(ends):
            latency = signal_latency_ms(record.value)
            if latency is not None:
                latencies.append(latency)
        self._signal_ends = ends
        return count, latencies

    def _read_events(self) -> None:
        for name in ("alerts", "updates"):
            reader = self._readers[name]
            while records := reader.poll(timeout_ms=50):
                for record in records:
                    where = record_id(reader.topic, record.partition, record.offset)
                    try:
                        notice = notice_of(record.value, name == "alerts", where)
                    except NoticeError as exc:
                        log.debug("dashboard: %s skipped: %s", where, exc)
                        continue
                    self._events.append(Event(notice, record.timestamp))
                    self._versions_stale = self._versions_stale or name == "updates"

    def new_events(self) -> list[Event]:
        """The messages read since the last call, in the order read."""
        events, self._events = self._events, []
        return events

    def _read_registry(self) -> None:
        registry = registry_on(self.settings, self._redis)
        state = registry.state()
        if state.active != self.registry_view["active"]:
            self._versions_stale = True
        if self._versions_stale:
            newest = registry.store.versions()[-VERSIONS_SHOWN:]
            rows = [version_row(v, registry.store.metadata(v), state) for v in newest]
            self.registry_view = {"active": state.active, "staged": state.staged, "versions": rows}
            self._versions_stale = False
        else:
            self.registry_view = {**self.registry_view, "staged": state.staged}

    def close(self) -> None:
        """Release every connection (the next :meth:`sample` reopens them)."""
        readers, self._readers = self._readers, {}
        for reader in readers.values():
            try:
                reader.close()
            except Exception:  # closing a broken connection: nothing left to save
                log.debug("dashboard: closing a reader failed", exc_info=True)
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        if self._loop is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing to save
                if self._state is not None:
                    self._loop.run_until_complete(self._state.aclose())
            self._loop.close()
            self._loop, self._state, self._store = None, None, None


def signal_latency_ms(value: bytes | None) -> float | None:
    """A signal's request -> signal latency in milliseconds (``scored_at - ts``); None for a
    signal without both stamps (or not JSON).

    >>> signal_latency_ms(b'{"ts": 1000, "scored_at": 1012, "status": "ok"}')
    12.0
    >>> signal_latency_ms(b'{"status": "expired"}') is None
    True
    """
    try:
        signal = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(signal, dict):
        return None
    ts, scored = signal.get("ts"), signal.get("scored_at")
    if not isinstance(ts, int) or not isinstance(scored, int):
        return None
    return float(scored - ts)
