"""All drift monitors of one model key, fed once per outcome by the learner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from models.drift.alerts import AlertEvent, Episode, episode_id
from models.drift.concept import ConceptMonitor
from models.drift.config import DriftConfig
from models.drift.distribution import DistributionMonitor, ReferenceBins
from models.drift.label import LabelMonitor

PREDICTION = "p_batch"


@dataclass(frozen=True)
class ModelReference:
    """What a batch model's metadata says "normal" looks like."""

    version: str
    features: dict[str, dict[str, Any]]
    predictions: dict[str, Any] | None
    label_rate: float | None

    @classmethod
    def from_metadata(cls, version: str, metadata: Mapping[str, Any]) -> ModelReference:
        """Read the reference parts of a version's metadata (missing parts are None/empty)."""
        reference = metadata.get("reference") or {}
        predictions = metadata.get("prediction_reference")
        return cls(
            version=version,
            features={name: dict(entry) for name, entry in reference.items()},
            predictions=dict(predictions) if predictions else None,
            label_rate=metadata.get("label_rate"),
        )

    @cached_property
    def feature_bins(self) -> dict[str, ReferenceBins]:
        """Bins of every feature's reference, built once and shared by every key's monitor."""
        return {name: ReferenceBins(entry) for name, entry in self.features.items()}

    @cached_property
    def prediction_bins(self) -> dict[str, ReferenceBins]:
        """Bins of the model's own predictions on validation rows (empty if not recorded)."""
        return {PREDICTION: ReferenceBins(self.predictions)} if self.predictions else {}


@dataclass(frozen=True)
class RetrainNeed:
    """An open drift episode whose policy asks for a retrain now."""

    episode: str
    kind: str
    window_outcomes: int
    reason: str


class DriftMonitor:
    """Concept, data, label and prediction drift of one model key."""

    def __init__(self, config: DriftConfig) -> None:
        self.config = config
        self.n = 0
        self.concept = ConceptMonitor(config)
        self.data = DistributionMonitor("data", config)
        self.prediction = DistributionMonitor("prediction", config)
        self.label = LabelMonitor(config)
        self.model_version: str | None = None
        #: Restored from a checkpoint, which holds no reference bins: see :meth:`attach`.
        self.detached = False
        kinds = config.kinds
        self._concept_on, self._data_on = "concept" in kinds, "data" in kinds
        self._prediction_on, self._label_on = "prediction" in kinds, "label" in kinds

    def update(
        self,
        key: str,
        features: Mapping[str, float],
        won: bool,
        p_batch: float | None,
        p_online: float | None,
        p_blend: float | None,
        reference: ModelReference | None,
    ) -> tuple[list[AlertEvent], list[RetrainNeed]]:
        """Feed one outcome; returns alerts/recoveries and retrains now due."""
        self.n = n = self.n + 1
        if reference is not None and (self.detached or reference.version != self.model_version):
            if reference.version == self.model_version:
                self.attach(reference)
            else:
                self._switch_model(reference)
        events: list[AlertEvent] = []
        if self._concept_on:
            events = self.concept.update_predictions(key, won, p_batch, p_online, p_blend, n)
        if self._data_on:
            self.data.add(features, n)  # every outcome: its sample window is exact by ``n``
        if self._prediction_on and p_batch is not None:
            self.prediction.add_one(PREDICTION, p_batch)
        if self._label_on:
            self.label.add(won)
        if n % self.config.check_every == 0:
            if self._data_on:
                events += self.data.check(key, n)
            if self._prediction_on:
                events += self.prediction.check(key, n)
            if self._label_on:
                events += self.label.check(key, n)
        return events, self._retrain_needs(key, n)

    def episodes(self) -> dict[str, Episode]:
        """Every episode by a readable name (for reports and the codec)."""
        named = {f"concept:{s}": e for s, e in self.concept.episodes.items()}
        named.update(
            {
                "data": self.data.episode,
                "prediction": self.prediction.episode,
                "label": self.label.episode,
            }
        )
        return named

    def statistics(self) -> dict[str, float]:
        """One number per drift kind, larger = further from normal (for gauges and charts):
        concept: the largest rise of a source's recent error over its baseline; data and
        prediction: the worst column's PSI; label: how far the recent win rate is from the
        model's training win rate. A kind with nothing to compare yet is left out."""
        found: dict[str, float] = {}
        if self._concept_on and self.concept.streams:
            found["concept"] = max(s.degradation for s in self.concept.streams.values())
        for name, monitor, on in (
            ("data", self.data, self._data_on),
            ("prediction", self.prediction, self._prediction_on),
        ):
            values = monitor.statistics() if on else {}
            if values:
                found[name] = max(values.values())
        rate, reference = self.label.rate, self.label.reference_rate
        if self._label_on and rate is not None and reference is not None:
            found["label"] = abs(rate - reference)
        return found

    def open_kinds(self) -> list[str]:
        """The drift kinds with an alert open now (``concept`` once however many sources)."""
        kinds = ["concept"] if any(e.open for e in self.concept.episodes.values()) else []
        kinds += [
            name
            for name, episode in (
                ("data", self.data.episode),
                ("prediction", self.prediction.episode),
                ("label", self.label.episode),
            )
            if episode.open
        ]
        return kinds

    def attach(self, reference: ModelReference) -> None:
        """Give a restored monitor the bins of its model's reference (kept out of checkpoints:
        they are the model's metadata, the same for every key); a different model's reference
        starts its comparisons over."""
        self.detached = False
        if reference.version != self.model_version:
            self._switch_model(reference)
            return
        self.data.attach(reference.version, reference.feature_bins)
        self.prediction.attach(reference.version, reference.prediction_bins)

    def _switch_model(self, reference: ModelReference) -> None:
        if self.model_version is not None:
            self.concept.on_model_change()
        self.model_version = reference.version
        self.detached = False
        self.data.set_reference(reference.version, reference.feature_bins)
        self.prediction.set_reference(reference.version, reference.prediction_bins)
        self.label.set_reference(reference.version, reference.label_rate)

    def _retrain_needs(self, key: str, n: int) -> list[RetrainNeed]:
        # Per outcome, so first the cheap question: is any retrain scheduled at all?
        for episode in (self.data.episode, self.prediction.episode, self.label.episode):
            if episode.retrain_due_at is not None and not episode.retrain_requested:
                break
        else:
            for episode in self.concept.episodes.values():
                if episode.retrain_due_at is not None and not episode.retrain_requested:
                    break
            else:
                return []
        needs = []
        for name, episode in self.episodes().items():
            due = episode.retrain_due_at
            if episode.open and due is not None and n >= due and not episode.retrain_requested:
                episode.retrain_requested = True
                kind, _, source = name.partition(":")
                window = max(self.config.retrain_min_window, n - episode.started_at)
                needs.append(
                    RetrainNeed(
                        episode=episode_id(key, kind, source or None, episode.started_at),
                        kind=name,
                        window_outcomes=window,
                        reason=f"{name} drift on key {key!r} since outcome {episode.started_at}",
                    )
                )
        return needs
