"""Prometheus metrics of one engine (its own registry, so several engines never collide).

Counted where things happen (this module); read from the engine's state when scraped
(:mod:`streams.state_metrics`). The names follow Prometheus' conventions: ``_total`` counters,
base units (``_seconds``), ``_ratio`` for shares.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from models.metrics import SOURCES, Tally

#: Request -> signal latency buckets, seconds (scoring takes ~1 ms; a backlog takes seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def add_process_collectors(registry: CollectorRegistry) -> None:
    """CPU, memory, open files (``process_*``), the Python version and GC counts
    (prometheus-client's own collectors) on a registry of one's own."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


def serve_metrics(registry: CollectorRegistry, host: str, port: int, setting: str) -> None:
    """Serve ``registry`` on ``/metrics`` from a daemon thread (prometheus-client's own
    server), for the processes without a web app (retrainer, notifier); a port that cannot
    be bound is an OSError naming ``setting``."""
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise OSError(
            f"{setting} {port} on {host}: {exc.strerror or exc} (0 turns it off)"
        ) from None


class EngineMetrics:
    """Counters and histograms exported on the worker's ``/metrics`` view."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.outcomes_learned = Counter(
            "streamlearn_outcomes_learned_total", "Outcomes learned", registry=self.registry
        )
        self.outcomes_replayed = Counter(
            "streamlearn_outcomes_replayed_total",
            "Outcomes skipped because their offset was already applied",
            registry=self.registry,
        )
        self.outcomes_refused = Counter(
            "streamlearn_outcomes_refused_total",
            "Valid outcomes not learned: duplicate outcome_id, non-finite update, key limit, error",
            ["reason"],
            registry=self.registry,
        )
        self.states_quarantined = Counter(
            "streamlearn_states_quarantined_total",
            "Stored key states that could not be restored and were set aside",
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "streamlearn_dead_letters_total",
            "Records sent to a dead-letter topic, by source topic and the kind of rule broken",
            ["source_topic", "reason"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "streamlearn_prequential_predictions_total",
            "Outcomes scored before learning them, per prediction source (online, batch, blend)",
            ["source"],
            registry=self.registry,
        )
        self.correct = Counter(
            "streamlearn_prequential_correct_total",
            "Of those, predictions on the right side of 0.5",
            ["source"],
            registry=self.registry,
        )
        self.log_loss = Counter(
            "streamlearn_prequential_log_loss_total",
            "Sum of their log losses (rate() of it over rate() of predictions: the mean)",
            ["source"],
            registry=self.registry,
        )
        for source in SOURCES:  # every series exists from the start (ratios need both)
            self.predictions.labels(source)
            self.correct.labels(source)
            self.log_loss.labels(source)
        self.signal_latency = Histogram(
            "streamlearn_signal_latency_seconds",
            "From a signal request's ts (the client's clock) to its signal being scored",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.dependency_errors = Counter(
            "streamlearn_dependency_errors_total",
            "Failed calls to Redis or the broker, by dependency and operation",
            ["dependency", "operation"],
            registry=self.registry,
        )
        self.signals = Counter(
            "streamlearn_signals_total", "Signals emitted", ["status"], registry=self.registry
        )
        self.checkpoints = Counter(
            "streamlearn_checkpoints_total",
            "Checkpoints committed to Redis",
            registry=self.registry,
        )
        self.checkpoint_seconds = Histogram(
            "streamlearn_checkpoint_seconds", "Checkpoint duration", registry=self.registry
        )
        self.fenced_partitions = Counter(
            "streamlearn_fenced_partitions_total",
            "Partitions whose checkpoint was refused because another worker owns them",
            registry=self.registry,
        )
        self.batch_model_swaps = Counter(
            "streamlearn_batch_model_swaps_total",
            "Batch model versions swapped in",
            registry=self.registry,
        )
        self.drift_alerts = Counter(
            "streamlearn_drift_alerts_total",
            "Drift alerts and recoveries raised",
            ["kind", "event"],
            registry=self.registry,
        )
        self.store_failures = Counter(
            "streamlearn_state_store_failures_total",
            "Checkpoints or claims that failed because the state store (Redis) was unreachable",
            registry=self.registry,
        )
        self.store_available = Gauge(
            "streamlearn_state_store_available",
            "1 while the state store answers, 0 while learning is paused for an outage",
            registry=self.registry,
        )
        self.store_available.set(1)
        self.engine_resets = Counter(
            "streamlearn_engine_resets_total",
            "Times the engine went back to its last checkpoint after an error",
            registry=self.registry,
        )
        self.keys_misplaced = Counter(
            "streamlearn_keys_misplaced_total",
            "Keys seen on a partition other than where their model is (requests, refused as "
            "misrouted) or than the default partitioner's (outcomes), once per key and topic",
            ["topic"],
            registry=self.registry,
        )
        self.signals_degraded = Counter(
            "streamlearn_signals_degraded_total",
            "Signals scored while the active-version pointer could not be read (see 'degraded')",
            registry=self.registry,
        )
        self.loaded_keys = Gauge(
            "streamlearn_loaded_model_keys",
            "Model keys held by this worker",
            registry=self.registry,
        )
        add_process_collectors(self.registry)
        #: Predictions, correct ones and the log-loss sum per source since the worker started.
        self.scored_totals = {source: Tally() for source in SOURCES}

    def count_scored(self, scored: Mapping[str, Tally]) -> None:
        """Add (and reset) one micro-batch's prequential sums per source."""
        for source, tally in scored.items():
            n, correct, loss = tally.drain()
            if n:
                total = self.scored_totals[source]
                total.n, total.correct = total.n + n, total.correct + correct
                total.log_loss += loss
                self.predictions.labels(source).inc(n)
                self.correct.labels(source).inc(correct)
                self.log_loss.labels(source).inc(loss)
