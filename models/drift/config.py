"""Settings of the drift monitors (built from the ``drift`` settings group)."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("concept", "data", "label", "prediction")
SOURCES = ("batch", "online", "blend")
DETECTORS = ("adwin", "page_hinkley", "kswin")


@dataclass(frozen=True)
class DriftConfig:
    """What is watched, how sensitive it is, and what an alert does."""

    kinds: tuple[str, ...] = KINDS
    concept_sources: tuple[str, ...] = SOURCES
    alert_sources: tuple[str, ...] = ("batch",)
    detector: str = "adwin"
    adwin_delta: float = 0.002
    replay_window: int = 5000
    baseline_half_life: float = 5000.0
    recent_half_life: float = 250.0
    min_degradation: float = 0.05
    recovery_tolerance: float = 0.02
    confirm_within: int = 1000
    warmup: int = 500
    cooldown_outcomes: int = 5000
    check_every: int = 500
    psi_half_life: float = 2000.0
    psi_alert: float = 0.25
    psi_borderline: float = 0.1
    ks_alpha: float = 0.01
    ks_samples: int = 200
    label_half_life: float = 2000.0
    label_alpha: float = 0.001
    label_min_shift: float = 0.05
    retrain_on: tuple[str, ...] = ("concept",)
    retrain_delay_outcomes: int = 2000
    retrain_min_window: int = 2000

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown drift kinds {sorted(unknown)}; choose from {KINDS}")
        if not set(self.alert_sources) <= set(self.concept_sources) <= set(SOURCES):
            raise ValueError("alert_sources must be watched concept_sources, from " + str(SOURCES))
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")
