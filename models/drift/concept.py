"""Concept drift: River detectors on each prediction source's 0/1 error stream.

Each source (batch, online, blend) keeps a detector, a slow EWMA of its error (the baseline,
frozen while an alert is open) and a fast one (the recent level). An alert needs both: the
detector fired within the last ``confirm_within`` outcomes *and* the recent error is at least
``min_degradation`` above the baseline. It recovers when the recent error is back within
``recovery_tolerance`` of the baseline it had when the alert opened. Only ``alert_sources``
raise alerts (default: batch, the model a retrain fixes); the others are watched for reports.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from river import drift

from models.decay import FadingMean, fading_factor
from models.drift.alerts import AlertEvent, Episode, episode_id
from models.drift.config import DriftConfig
from models.drift.ring import Ring


def make_detector(config: DriftConfig) -> drift.base.DriftDetector:
    """A fresh River detector of the configured kind."""
    if config.detector == "adwin":
        return drift.ADWIN(delta=config.adwin_delta)
    if config.detector == "page_hinkley":
        return drift.PageHinkley(mode="up")
    return drift.KSWIN(seed=0)


def detector_name(config: DriftConfig) -> str:
    """How alerts name the detector."""
    if config.detector == "adwin":
        return f"ADWIN(delta={config.adwin_delta})"
    return {"page_hinkley": "PageHinkley(mode=up)", "kswin": "KSWIN(seed=0)"}[config.detector]


class ErrorStream:
    """One source's error stream: detector, baseline and recent EWMAs, replay window."""

    def __init__(self, config: DriftConfig) -> None:
        self._config = config
        self._detector = make_detector(config)
        self._replay_pending = False
        self.replay = Ring(config.replay_window, np.uint8)  # errors are 0 or 1
        self.baseline_mean = FadingMean(fading_factor(config.baseline_half_life))
        self.recent_mean = FadingMean(fading_factor(config.recent_half_life))
        self.seen = 0
        self.suspect_until = -1

    @property
    def detector(self) -> drift.base.DriftDetector:
        """The detector, brought up to date with the saved errors on first use after a restore."""
        if self._replay_pending:
            self._replay_pending = False
            for value in self.replay.values().tolist():
                self._detector.update(float(value))
        return self._detector

    def update(self, error: float, n: int, freeze_baseline: bool) -> None:
        """Feed one error (0 or 1)."""
        if self._replay_pending:
            self.detector  # noqa: B018 - replays the saved errors first (see replay_into_detector)
        detector = self._detector
        self.replay.append(1 if error else 0)
        detector.update(error)
        self.seen += 1
        # FadingMean.update, inlined (same arithmetic): three per outcome and source.
        mean = self.recent_mean
        mean.weight = weight = mean.weight * mean.factor + 1.0
        value = mean.value
        mean.value = error if value is None else value + (error - value) / weight
        if not freeze_baseline:
            mean = self.baseline_mean
            mean.weight = weight = mean.weight * mean.factor + 1.0
            value = mean.value
            mean.value = error if value is None else value + (error - value) / weight
        if detector.drift_detected:
            self.suspect_until = n + self._config.confirm_within

    @property
    def baseline(self) -> float | None:
        """Long-run error level (frozen while an alert is open)."""
        return self.baseline_mean.value

    @property
    def recent(self) -> float | None:
        """Recent error level."""
        return self.recent_mean.value

    @property
    def degradation(self) -> float:
        """How far the recent error is above the baseline."""
        if self.recent is None or self.baseline is None:
            return 0.0
        return self.recent - self.baseline

    @property
    def window(self) -> float:
        """The detector's current window length (ADWIN) or the replay length."""
        width = getattr(self.detector, "width", None)
        return float(width) if width is not None else float(len(self.replay))

    def reset_detector(self) -> None:
        """A new model produces a new error stream: forget the old one's detector state."""
        self._detector = make_detector(self._config)
        self._replay_pending = False
        self.replay.clear()
        self.seen = 0
        self.suspect_until = -1

    def replay_into_detector(self, values: Iterable[float] | np.ndarray) -> None:
        """Restore after a restart: a fresh detector sees the saved recent errors again.

        The replay itself waits until the detector is first used (River's detectors cannot be
        saved, and replaying every key's window at once made restoring 10,000 keys take about
        a minute, blocking the event loop); the result is the same as replaying now.
        """
        if self._replay_pending or self.seen or len(self.replay):
            raise RuntimeError("replay_into_detector restores a fresh stream only")
        self.replay.extend(values)
        self._replay_pending = len(self.replay) > 0


class ConceptMonitor:
    """Concept drift of one model key across its prediction sources."""

    def __init__(self, config: DriftConfig) -> None:
        self.config = config
        self.streams = {source: ErrorStream(config) for source in config.concept_sources}
        self.episodes = {source: Episode() for source in config.alert_sources}

    def update_predictions(
        self,
        key: str,
        won: bool,
        p_batch: float | None,
        p_online: float | None,
        p_blend: float | None,
        n: int,
    ) -> list[AlertEvent]:
        """Feed one outcome's three predictions (None where a source made none)."""
        events: list[AlertEvent] = []
        for source, p in (("batch", p_batch), ("online", p_online), ("blend", p_blend)):
            if p is not None:
                self._update_source(key, source, 1.0 if (p > 0.5) != won else 0.0, n, events)
        return events

    def update(self, key: str, errors: dict[str, float | None], n: int) -> list[AlertEvent]:
        """Feed one outcome's errors (None where a source made no prediction)."""
        events: list[AlertEvent] = []
        for source, error in errors.items():
            if error is not None:
                self._update_source(key, source, error, n, events)
        return events

    def _update_source(
        self, key: str, source: str, error: float, n: int, events: list[AlertEvent]
    ) -> None:
        stream = self.streams.get(source)
        if stream is None:
            return
        episode = self.episodes.get(source)
        if episode is None:
            stream.update(error, n, freeze_baseline=False)
            return
        stream.update(error, n, freeze_baseline=episode.open)
        config = self.config
        # Cheapest test first: no detection within ``confirm_within`` -> no alert (the
        # conditions have no side effects, so their order does not change the outcome).
        if (
            n <= stream.suspect_until
            and episode.can_open(n)
            and stream.seen >= config.warmup
            and stream.degradation >= config.min_degradation
        ):
            episode.start(n, {"baseline": stream.baseline, "recent_at_alert": stream.recent})
            if "concept" in config.retrain_on and source == "batch":
                episode.retrain_due_at = n + config.retrain_delay_outcomes
            events.append(self._event("alert", key, source, stream, episode, n))
        elif (
            episode.open
            and n - episode.started_at >= config.recent_half_life
            and stream.recent is not None
            and stream.recent <= episode.details["baseline"] + config.recovery_tolerance
        ):
            events.append(self._event("recovery", key, source, stream, episode, n))
            episode.close(n, config.cooldown_outcomes)

    def on_model_change(self) -> None:
        """The batch model was replaced: its error stream starts over (detector, warm-up)."""
        stream = self.streams.get("batch")
        if stream is not None:
            stream.reset_detector()

    def _event(
        self, event: str, key: str, source: str, stream: ErrorStream, episode: Episode, n: int
    ) -> AlertEvent:
        config = self.config
        baseline = float(episode.details["baseline"])
        recent = float(stream.recent or 0.0)
        if event == "alert":
            severity = "critical" if recent - baseline >= 2 * config.min_degradation else "warning"
            action = "retrain_scheduled" if episode.retrain_due_at is not None else "none"
            threshold = baseline + config.min_degradation
        else:
            severity, action, threshold = "info", "none", baseline + config.recovery_tolerance
        return AlertEvent(
            event=event,
            kind="concept",
            source=source,
            detector=detector_name(config),
            statistic=recent,
            threshold=threshold,
            window=stream.window,
            severity=severity,
            action=action,
            at_outcome=n,
            episode=episode_id(key, "concept", source, episode.started_at),
            details={
                "metric": "error rate (0/1) of the " + source + " prediction",
                "baseline_error": baseline,
                "recent_error": recent,
                "recent_half_life": config.recent_half_life,
                "errors_by_source": {
                    s: (None if st.recent is None else round(st.recent, 5))
                    for s, st in self.streams.items()
                },
            },
        )
