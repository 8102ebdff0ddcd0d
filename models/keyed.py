"""The learned state of one model key: its online learner and its prequential metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from models.metrics import PrequentialMetrics
from models.online import OnlineConfig, OnlineLearner


@dataclass
class KeyModel:
    """Everything learned for one model key; checkpointed to Redis as one record."""

    learner: OnlineLearner
    metrics: PrequentialMetrics = field(default_factory=PrequentialMetrics)
    last_ts: int | None = None

    @classmethod
    def fresh(cls, config: OnlineConfig) -> KeyModel:
        """A key that has learned nothing yet."""
        return cls(learner=OnlineLearner(config))

    @property
    def updates(self) -> int:
        """How many outcomes this key's online model has learned."""
        return self.learner.updates

    def summary(self) -> dict:
        """Plain numbers for status views and the demo."""
        return {
            "updates": self.updates,
            "last_ts": self.last_ts,
            "metrics": self.metrics.summary(),
        }
