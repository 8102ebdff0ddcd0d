"""Metrics read from a worker's state when Prometheus scrapes it (a custom collector).

What the worker holds -- its keys' prequential numbers and drift monitors, its partitions'
offsets, the batch version -- is read at scrape time instead of being mirrored into gauges on
every outcome: nothing is added to the learning path, and the numbers cannot disagree with
the state. Per-key series are limited to the ``top_keys`` keys with the most outcomes, so a
deployment with 100,000 keys still exports a bounded number of series.

Exported (all gauges):

* ``streamlearn_prequential_accuracy_ratio{source}``, ``streamlearn_prequential_log_loss{source}``:
  every outcome this worker scored since it started (online / batch / blend);
* ``streamlearn_key_outcomes{model_key}``, ``streamlearn_key_accuracy_ratio{model_key,source}``,
  ``streamlearn_key_log_loss{model_key,source}``: since the key started;
  ``streamlearn_key_recent_accuracy_ratio{model_key,source}``: over the drift monitor's recent
  half-life (drift on);
* ``streamlearn_drift_statistic{model_key,kind}``: :meth:`DriftMonitor.statistics`;
* ``streamlearn_drift_open_episodes{kind}``: keys with an alert open, over every key held;
* ``streamlearn_consumer_lag{topic,partition}``: records behind the partition's end (outcomes:
  not yet applied; requests: not yet scored);
* ``streamlearn_batch_model_info{version}``: the batch version scoring now (absent: none).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from models.keyed import KeyModel
from streams.engine import Engine

DRIFT_KINDS = ("concept", "data", "prediction", "label")


class StateCollector(Collector):
    """Gauges of one engine's state, computed on each scrape (see the module doc)."""

    def __init__(
        self, engine: Engine, engine_status: Callable[[], Mapping[str, Any]], top_keys: int
    ) -> None:
        self._engine = engine
        self._status = engine_status
        self._top_keys = top_keys

    def describe(self) -> list:
        """Nothing up front: registering must not read state that does not exist yet."""
        return []

    def collect(self) -> Iterator[Any]:
        """The gauges, from the state as it is now."""
        yield from self._worker_prequential()
        keys = [
            (key, model)
            for loaded in self._engine.state.partitions.values()
            for key, model in loaded.models.items()
        ]
        yield from self._top(keys)
        yield self._open_episodes(model for _, model in keys)
        yield self._lag()
        version = self._engine.batch.version
        info = InfoMetricFamily("streamlearn_batch_model", "The batch model version scoring now")
        if version is not None:
            info.add_metric([], {"version": version})
        yield info

    def _worker_prequential(self) -> Iterator[GaugeMetricFamily]:
        accuracy = GaugeMetricFamily(
            "streamlearn_prequential_accuracy_ratio",
            "Share of right predictions over every outcome scored since the worker started",
            labels=["source"],
        )
        loss = GaugeMetricFamily(
            "streamlearn_prequential_log_loss",
            "Mean log loss over every outcome scored since the worker started",
            labels=["source"],
        )
        for source, total in self._engine.metrics.scored_totals.items():
            if total.n:
                accuracy.add_metric([source], total.correct / total.n)
                loss.add_metric([source], total.log_loss / total.n)
        yield accuracy
        yield loss

    def _top(self, keys: list[tuple[str, KeyModel]]) -> Iterator[GaugeMetricFamily]:
        outcomes = GaugeMetricFamily(
            "streamlearn_key_outcomes",
            f"Outcomes learned by each of the {self._top_keys} keys with the most",
            labels=["model_key"],
        )
        accuracy = GaugeMetricFamily(
            "streamlearn_key_accuracy_ratio",
            "A top key's prequential accuracy since it started",
            labels=["model_key", "source"],
        )
        loss = GaugeMetricFamily(
            "streamlearn_key_log_loss",
            "A top key's prequential log loss since it started",
            labels=["model_key", "source"],
        )
        recent = GaugeMetricFamily(
            "streamlearn_key_recent_accuracy_ratio",
            "A top key's accuracy over the drift monitor's recent half-life",
            labels=["model_key", "source"],
        )
        drift = GaugeMetricFamily(
            "streamlearn_drift_statistic",
            "A top key's drift statistic per kind (concept: error rise over baseline; data, "
            "prediction: worst PSI; label: win-rate shift)",
            labels=["model_key", "kind"],
        )
        top = heapq.nlargest(self._top_keys, keys, key=lambda item: item[1].updates)
        for key, model in top:
            outcomes.add_metric([key], model.updates)
            for source, metrics in model.metrics.sources.items():
                if metrics.n:
                    accuracy.add_metric([key, source], metrics.correct / metrics.n)
                    loss.add_metric([key, source], metrics.log_loss_mean)
            if model.drift is None:
                continue
            for source, stream in model.drift.concept.streams.items():
                if stream.recent is not None:
                    recent.add_metric([key, source], 1.0 - stream.recent)
            for kind, value in model.drift.statistics().items():
                drift.add_metric([key, kind], value)
        yield from (outcomes, accuracy, loss, recent, drift)

    def _open_episodes(self, models: Iterable[KeyModel]) -> GaugeMetricFamily:
        counts = dict.fromkeys(DRIFT_KINDS, 0)
        for model in models:
            if model.drift is not None:
                for kind in model.drift.open_kinds():
                    counts[kind] += 1
        family = GaugeMetricFamily(
            "streamlearn_drift_open_episodes",
            "Keys held by this worker with a drift alert open, by kind",
            labels=["kind"],
        )
        for kind, count in counts.items():
            family.add_metric([kind], count)
        return family

    def _lag(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "streamlearn_consumer_lag",
            "Records behind the end of an assigned partition (outcomes: not applied yet; "
            "requests: not scored yet)",
            labels=["topic", "partition"],
        )
        status = self._status()
        topics = self._engine.topics
        for partition, end in sorted((status.get("highwaters") or {}).items()):
            loaded = self._engine.state.partitions.get(partition)
            if end is not None and loaded is not None:
                family.add_metric(
                    [topics.outcomes, str(partition)], max(0, end - loaded.applied_offset - 1)
                )
        positions = self._engine.scorer.positions
        for partition, end in sorted((status.get("request_highwaters") or {}).items()):
            position = positions.get(partition)
            if end is not None and (position is not None or end == 0):
                family.add_metric([topics.requests, str(partition)], max(0, end - (position or 0)))
        return family
