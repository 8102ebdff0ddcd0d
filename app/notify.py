"""``streamlearn notify``: drift alerts, recoveries and model updates to webhooks.

Reads ``drift-alerts`` and ``model-updates`` from the offsets it keeps in Redis (manual
assignment: no consumer group, as the retrainer), turns each message into a notice
(:mod:`models.notifications`) and POSTs it to every configured webhook whose filter wants it:
Slack-compatible ``{text, blocks}`` or the notice as generic JSON.

Delivery, per notice and webhook: skipped if Redis says that webhook already got this
``notice_id`` (the workers' outbox may publish an alert twice, and a restart re-reads what was
not committed); otherwise POSTed, retried with backoff (1 s doubling to 60 s) up to
``notify.max_attempts``, then marked delivered. A partition's offset is committed only after
each of its notices was delivered everywhere (or given up on), so a crash or SIGKILL loses
nothing and repeats nothing it had marked. The one window left is a kill after a receiver
accepted a POST and before the mark is written (one Redis SET): the notice is sent again, with
the same ``Idempotency-Key`` header (its ``notice_id``) for receivers that deduplicate.
"""

from __future__ import annotations

import logging
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import orjson
from prometheus_client import CollectorRegistry, Counter

from app.composition import notifier_ports
from app.embedded import Endpoints
from config import Settings
from config.settings import WebhookSettings
from models.coordination import NotifierState
from models.notifications import Notice, NoticeError, NoticeFilter, notice_of, record_id
from streams.failpoints import failpoint
from streams.reader import TopicReader
from streams.telemetry import add_process_collectors, serve_metrics

log = logging.getLogger(__name__)

#: POSTs a JSON body to a URL with headers within a timeout; raises on anything but 2xx.
Post = Callable[[str, bytes, dict[str, str], float], None]


class DeliveryError(RuntimeError):
    """A webhook did not accept a notice."""


def http_post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> None:
    """POST with the standard library; a non-2xx answer or no answer raises."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}")


@dataclass(frozen=True)
class Webhook:
    """A configured webhook: its name, URL, format and filter."""

    name: str
    url: str
    format: str
    filter: NoticeFilter

    @classmethod
    def from_settings(cls, hook: WebhookSettings) -> Webhook:
        """From ``notify.webhooks``."""
        return cls(
            hook.name,
            hook.url.get_secret_value(),
            hook.format,
            NoticeFilter(hook.min_severity, hook.kinds, hook.events),
        )

    def body(self, notice: Notice) -> bytes:
        """The POST body in this webhook's format."""
        return orjson.dumps(notice.as_slack() if self.format == "slack" else notice.as_json())


class NotifyMetrics:
    """The notifier's counters, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.notices = Counter(
            "streamlearn_notifications_total",
            "Notices per webhook by outcome: delivered, duplicate (already delivered), "
            "filtered, given_up",
            ["webhook", "outcome"],
            registry=self.registry,
        )
        self.failures = Counter(
            "streamlearn_notification_failures_total",
            "POSTs a webhook did not accept (each retry counts)",
            ["webhook"],
            registry=self.registry,
        )
        self.unreadable = Counter(
            "streamlearn_notification_unreadable_total",
            "Messages on the watched topics that are not alerts or updates (skipped)",
            registry=self.registry,
        )
        add_process_collectors(self.registry)


class Notifier:
    """Sends every notice to the webhooks that want it, once (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        endpoints: Endpoints,
        state: NotifierState,
        out: TextIO = sys.stderr,
        post: Post = http_post,
        metrics: NotifyMetrics | None = None,
    ) -> None:
        self.settings = settings
        self._endpoints = endpoints
        self.state = state
        self._out = out
        self._post = post
        self.metrics = metrics or NotifyMetrics()
        self.webhooks = [Webhook.from_settings(hook) for hook in settings.notify.webhooks]
        topics = settings.topics
        self._topics = (topics.drift_alerts, topics.model_updates)

    def say(self, text: str) -> None:
        """A progress line for the operator."""
        print(f"notify: {text}", file=self._out, flush=True)

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; errors (broker or Redis down) are retried."""
        failures = 0
        while not stop.is_set():
            try:
                self._serve(stop)
            except Exception as exc:
                failures += 1
                delay = min(30.0, 2.0 ** min(failures, 5))
                log.error("notify error; retrying", extra={"error": repr(exc), "in_s": delay})
                stop.wait(delay)

    def _serve(self, stop: threading.Event) -> None:
        readers = [TopicReader(self._endpoints.kafka, topic) for topic in self._topics]
        try:
            stored = self.state.offsets()
            for reader in readers:
                reader.seek(
                    {
                        tp.partition: stored.get(_slot(reader.topic, tp.partition), 0)
                        for tp in reader.partitions
                    }
                )
            names = ", ".join(f"{w.name} ({w.format})" for w in self.webhooks) or "none"
            self.say(f"ready; {' and '.join(self._topics)} to webhooks: {names}")
            while not stop.is_set():
                busy = False
                for reader in readers:
                    for record in reader.poll(timeout_ms=100):
                        busy = True
                        self.deliver_record(
                            reader.topic, record.partition, record.offset, record.value, stop
                        )
                        if stop.is_set():
                            return
                if not busy:
                    stop.wait(self.settings.notify.poll_interval_s)
        finally:
            for reader in readers:
                reader.close()

    def deliver_record(
        self, topic: str, partition: int, offset: int, value: bytes | None, stop: threading.Event
    ) -> None:
        """Deliver one message's notice everywhere it is wanted, then commit past it."""
        notice = self._notice(topic, partition, offset, value)
        if notice is not None:
            for webhook in self.webhooks:
                if stop.is_set():
                    return  # not committed: the next run delivers the rest
                self._deliver(webhook, notice, stop)
        failpoint("notify-before-commit")
        self.state.commit_offsets({_slot(topic, partition): offset + 1})

    def _notice(
        self, topic: str, partition: int, offset: int, value: bytes | None
    ) -> Notice | None:
        try:
            return notice_of(value, topic == self._topics[0], record_id(topic, partition, offset))
        except NoticeError as exc:
            self.metrics.unreadable.inc()
            log.warning(
                "message skipped: not a notice",
                extra={"topic": topic, "partition": partition, "offset": offset, "error": str(exc)},
            )
            return None

    def _deliver(self, webhook: Webhook, notice: Notice, stop: threading.Event) -> None:
        outcome = self.metrics.notices
        if not webhook.filter.wants(notice):
            outcome.labels(webhook.name, "filtered").inc()
            return
        if self.state.delivered(notice.notice_id, webhook.name):
            outcome.labels(webhook.name, "duplicate").inc()
            return
        notify = self.settings.notify
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": notice.notice_id,
            "User-Agent": "streamlearn-notify",
        }
        body = webhook.body(notice)
        delay = 1.0
        for attempt in range(1, notify.max_attempts + 1):
            failpoint("notify-before-post")
            try:
                self._post(webhook.url, body, headers, notify.timeout_s)
            except DeliveryError as exc:
                self.metrics.failures.labels(webhook.name).inc()
                log.warning(
                    "webhook did not accept a notice",
                    extra={
                        "webhook": webhook.name,
                        "notice_id": notice.notice_id,
                        "attempt": attempt,
                        "error": str(exc),
                    },
                )
                if attempt == notify.max_attempts or stop.wait(delay):
                    break
                delay = min(60.0, delay * 2)
                continue
            self.state.mark_delivered(notice.notice_id, webhook.name, notify.dedupe_ttl_s)
            outcome.labels(webhook.name, "delivered").inc()
            self.say(f"{webhook.name}: {notice.title}")
            return
        if stop.is_set():
            return
        outcome.labels(webhook.name, "given_up").inc()
        log.error(
            "notice given up",
            extra={
                "webhook": webhook.name,
                "notice_id": notice.notice_id,
                "attempts": notify.max_attempts,
            },
        )


def _slot(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def run_notify(settings: Settings, endpoints: Endpoints) -> int:
    """The ``notify`` command: deliver until SIGTERM or Ctrl-C."""
    import signal

    if not settings.notify.webhooks:
        raise NotifyError("no webhooks configured (notify.webhooks; docs/operations.md)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ports = notifier_ports(settings, endpoints.redis)
    notifier = Notifier(settings, endpoints, ports.state)
    if settings.notify.metrics_port:
        serve_metrics(
            notifier.metrics.registry,
            settings.web.host,
            settings.notify.metrics_port,
            "notify.metrics_port",
        )
    try:
        notifier.run(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        ports.close()
    return 0


class NotifyError(RuntimeError):
    """``notify`` cannot run (nothing to send to)."""
