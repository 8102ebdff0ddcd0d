"""Label drift: the recent win rate against the training window's, by a binomial test."""

from __future__ import annotations

from scipy import stats

from models.decay import fading_factor
from models.drift.alerts import AlertEvent, Episode, episode_id
from models.drift.config import DriftConfig


class LabelMonitor:
    """Faded win/loss counts of one key; alert when the win rate moved and it is significant."""

    def __init__(self, config: DriftConfig) -> None:
        self.config = config
        self.reference_rate: float | None = None
        self.reference_version: str | None = None
        self.n = 0.0
        self.wins = 0.0
        self.episode = Episode()
        self._block_decay = fading_factor(config.label_half_life) ** config.check_every

    def set_reference(self, version: str, rate: float | None) -> None:
        """Compare against a new model's training win rate from now on."""
        self.reference_version, self.reference_rate = version, rate
        self.n = self.wins = 0.0

    def add(self, won: bool) -> None:
        """Count one outcome."""
        self.n += 1.0
        self.wins += 1.0 if won else 0.0

    @property
    def rate(self) -> float | None:
        """The recent (faded) win rate."""
        return self.wins / self.n if self.n else None

    def check(self, key: str, n: int) -> list[AlertEvent]:
        """Judge drift now (every ``check_every`` outcomes), then fade the counts."""
        events: list[AlertEvent] = []
        config, reference, rate = self.config, self.reference_rate, self.rate
        if reference is not None and rate is not None and self.n >= config.warmup:
            shift = abs(rate - reference)
            p_value = float(stats.binomtest(round(self.wins), round(self.n), reference).pvalue)
            if shift >= config.label_min_shift and p_value < config.label_alpha:
                if self.episode.can_open(n):
                    self.episode.start(n, {"reference_rate": reference})
                    if "label" in config.retrain_on:
                        self.episode.retrain_due_at = n + config.retrain_delay_outcomes
                    events.append(self._event("alert", key, n, rate, p_value))
            elif self.episode.open and shift < config.label_min_shift / 2:
                events.append(self._event("recovery", key, n, rate, p_value))
                self.episode.close(n, config.cooldown_outcomes)
        self.n *= self._block_decay
        self.wins *= self._block_decay
        return events

    def _event(self, event: str, key: str, n: int, rate: float, p_value: float) -> AlertEvent:
        config = self.config
        alert = event == "alert"
        return AlertEvent(
            event=event,
            kind="label",
            source=None,
            detector=f"binomial test (alpha {config.label_alpha}) of the recent win rate",
            statistic=rate,
            threshold=config.label_min_shift if alert else config.label_min_shift / 2,
            window=config.label_half_life,
            severity="warning" if alert else "info",
            action=(
                "retrain_scheduled" if alert and self.episode.retrain_due_at is not None else "none"
            ),
            at_outcome=n,
            episode=episode_id(key, "label", None, self.episode.started_at),
            details={
                "win_rate": rate,
                "reference_win_rate": self.reference_rate,
                "p_value": p_value,
                "reference_version": self.reference_version,
            },
        )
