"""Prometheus metrics of one engine (its own registry, so several engines never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
            "Records sent to a dead-letter topic",
            ["source_topic"],
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
