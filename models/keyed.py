"""The state of one model key: online learner, prequential metrics, drift monitor, outbox, and
its fitted blend weight (``optimized`` blend mode) or meta-learner (``stacked``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.blend import BlendFit, FittedBlend
from models.dedupe import RecentIds
from models.drift.config import DriftConfig
from models.drift.monitor import DriftMonitor
from models.metrics import PrequentialMetrics
from models.online import OnlineConfig, OnlineLearner
from models.shadow import ShadowTally


@dataclass
class KeyModel:
    """Everything learned for one model key; checkpointed to Redis as one record."""

    learner: OnlineLearner
    metrics: PrequentialMetrics = field(default_factory=PrequentialMetrics)
    last_ts: int | None = None
    drift: DriftMonitor | None = None
    #: Messages (alerts, retrain requests) decided on but not yet known to be published; they
    #: are checkpointed with the state that produced them, then published (see streams.outbox).
    outbox: list[dict[str, Any]] = field(default_factory=list)
    #: Hashes of the newest outcome ids learned (None when deduplication is off).
    seen: RecentIds | None = None
    #: The key's own blend: fitted weights (``optimized`` mode) or a meta-learner
    #: (``stacked``); None in the ``fixed`` mode.
    blend: FittedBlend | None = None
    #: The staged batch version's live tally (:mod:`models.shadow`); None until one is staged.
    shadow: ShadowTally | None = None

    @classmethod
    def fresh(
        cls,
        config: OnlineConfig,
        drift: DriftConfig | None = None,
        blend: BlendFit | None = None,
    ) -> KeyModel:
        """A key that has learned nothing yet."""
        return cls(
            learner=OnlineLearner(config),
            drift=None if drift is None else DriftMonitor(drift),
            seen=RecentIds(config.dedupe_window) if config.dedupe_window else None,
            blend=None if blend is None else blend.fresh(),
        )

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
