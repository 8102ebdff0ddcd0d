"""Warm start: a retrain continues the champion's boosting instead of starting from nothing.

Only when it can mean something: the champion is of the same family, that family can continue
training (XGBoost's ``xgb_model``), it was trained on the same features, and its data window
overlaps the new one (a champion trained on another period is no head start, just bias). The
new rounds are early-stopped on the new validation rows as usual, and the gate judges the
result like any challenger. The plan, taken or not and why, is recorded in the metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.batch import BatchModel
from models.families import FittedModel, family


@dataclass(frozen=True)
class WarmStartPlan:
    """The model to continue (None: train from scratch) and the metadata record saying why."""

    start: FittedModel | None
    record: dict[str, Any]


def plan_warm_start(
    champion: BatchModel | None, family_name: str, features: Sequence[str], ts: np.ndarray
) -> WarmStartPlan:
    """Whether a retrain of ``family_name`` on rows closing at ``ts`` continues ``champion``."""

    def scratch(reason: str) -> WarmStartPlan:
        return WarmStartPlan(None, {"used": False, "reason": reason})

    if champion is None:
        return scratch("no champion")
    if champion.model.family != family_name:
        return scratch(f"the champion is {champion.model.family}, the retrain {family_name}")
    if not family(family_name).continues_training:
        return scratch(f"{family_name} cannot continue training")
    if tuple(champion.features) != tuple(features):
        return scratch("the champion was trained on other features")
    if champion.window is None or len(ts) == 0:
        return scratch("the champion's window is unknown")
    first, last = champion.window
    inside = int(np.count_nonzero((ts >= first) & (ts <= last)))
    if inside == 0:
        return scratch("the windows do not overlap")
    return WarmStartPlan(
        champion.model,
        {
            "used": True,
            "from_version": champion.version,
            "initial_rounds": champion.model.rounds,
            "overlap": inside / len(ts),
        },
    )
