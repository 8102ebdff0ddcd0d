"""A Faust app whose Kafka consumer waits at most ``kafka.fetch_max_wait_ms`` per fetch.

Faust's aiokafka driver hard-codes ``fetch_max_wait_ms=1500``. Measured on the embedded broker
(tansu), a consumer-group fetch over several partitions is answered about when its wait runs
out, not when data arrives: request -> signal p50 was ~100 ms with a 500 ms wait, ~11-28 ms with
100 ms and ~5 ms with 10 ms (``bench/scoring_latency.py``). Apache Kafka answers a long-poll as
soon as data arrives, so there the setting only bounds idle polling (10 ms: ~100 empty fetches a
second per idle consumer). The change is one attribute of the aiokafka consumer before it starts.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    fetch_max_wait_ms = 10

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms  # read by start(), not yet called
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        thread = _ConsumerThread(self, loop=self.loop, beacon=self.beacon)
        thread.fetch_max_wait_ms = self.app.streamlearn_fetch_max_wait_ms
        return thread


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class StreamlearnApp(faust.App):
    """``faust.App`` with a bounded consumer fetch wait (see module docstring)."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int = 10, **kwargs: Any) -> None:
        self.streamlearn_fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
