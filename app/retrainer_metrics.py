"""Prometheus metrics of the retrainer, served on ``retrain.metrics_port`` (``/metrics``).

Ops watch that retrains happen (and how they end), how long they take, which retrainer leads
and when the last one succeeded; a retrainer that silently stopped shows as a stale
``streamlearn_retrain_last_finished_timestamp_seconds``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from models.triggers import TRIGGERS
from streams.telemetry import add_process_collectors, serve_metrics

#: How a retrain ended.
OUTCOMES = ("activated", "staged", "rejected", "failed")


class RetrainerMetrics:
    """The retrainer's counters and gauges, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.retrains = Counter(
            "streamlearn_retrains_total",
            "Retrains by how they ended: activated, staged, rejected (by the gate), failed",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.retrains.labels(outcome)  # every series exists from the start (rate() needs it)
        self.seconds = Histogram(
            "streamlearn_retrain_seconds",
            "Duration of a retrain (read window, train, gate, store)",
            buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600),
            registry=self.registry,
        )
        self.window_rows = Gauge(
            "streamlearn_retrain_window_rows",
            "Outcomes in the last retrain's window",
            registry=self.registry,
        )
        self.leader = Gauge(
            "streamlearn_retrainer_leader",
            "1 while this retrainer is the active one, 0 while it waits as a standby",
            registry=self.registry,
        )
        self.triggers = Counter(
            "streamlearn_retrain_triggers_total",
            "Retrain requests this retrainer enqueued by itself: schedule, volume",
            ["trigger"],
            registry=self.registry,
        )
        for trigger in TRIGGERS:
            self.triggers.labels(trigger)
        self.last_finished = Gauge(
            "streamlearn_retrain_last_finished_timestamp_seconds",
            "Unix time the last retrain that did not fail finished",
            registry=self.registry,
        )
        add_process_collectors(self.registry)

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` from a daemon thread (prometheus-client's own server)."""
        serve_metrics(self.registry, host, port, "retrain.metrics_port")
