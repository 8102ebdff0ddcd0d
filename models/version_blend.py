"""A batch version's blend, fitted when the version was trained: what its blend starts from.

The retrainer fits, on walk-forward out-of-fold predictions (:mod:`models.blend_training`), the
linear weight of the new batch model against its partner, the online model, and a logistic
meta-learner on the two parts' scores; both are recorded in the version's metadata (``blend``).
With ``blend.start = fitted`` a worker starts every key's blend from them while that version
is active: the ``fixed`` mode blends with the fitted weights, ``optimized`` shrinks each key's
refits toward the fitted weight, ``stacked`` starts a key's meta-learner from the fitted one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.stacking import STACK_INPUTS, StackInputs


@dataclass(frozen=True)
class StackStart:
    """A fitted meta-learner: its inputs, its weight per input and its intercept."""

    inputs: StackInputs
    weights: dict[str, float]
    intercept: float


@dataclass(frozen=True)
class VersionBlend:
    """The blend fitted for one batch version (``metadata["blend"]``)."""

    w_batch: float
    stack: StackStart | None = None
    #: Out-of-fold rows the fit used.
    rows: int = 0

    @property
    def w_online(self) -> float:
        """The online model's fitted weight (the two sum to 1)."""
        return 1.0 - self.w_batch

    def as_metadata(self) -> dict[str, Any]:
        """Plain data for the version's metadata."""
        stack = self.stack
        return {
            "w_batch": self.w_batch,
            "w_online": self.w_online,
            "rows": self.rows,
            "stack": None
            if stack is None
            else {
                "inputs": stack.inputs,
                "weights": dict(stack.weights),
                "intercept": stack.intercept,
            },
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> VersionBlend | None:
        """The version's fitted blend, or None when it has none or it is not usable (a version
        trained before blends were fitted, or edited by hand: never a made-up weight)."""
        data = metadata.get("blend")
        if not isinstance(data, Mapping):
            return None
        w_batch = data.get("w_batch")
        if not _finite(w_batch) or not 0.0 <= w_batch <= 1.0:
            return None
        rows = data.get("rows")
        return cls(
            w_batch=float(w_batch),
            stack=_stack_of(data.get("stack")),
            rows=int(rows) if isinstance(rows, int) else 0,
        )


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _stack_of(data: Any) -> StackStart | None:
    if not isinstance(data, Mapping):
        return None
    inputs, weights, intercept = data.get("inputs"), data.get("weights"), data.get("intercept")
    if inputs not in STACK_INPUTS or not isinstance(weights, Mapping):
        return None
    if not _finite(intercept) or not all(_finite(w) for w in weights.values()):
        return None
    return StackStart(inputs, {str(k): float(v) for k, v in weights.items()}, float(intercept))
