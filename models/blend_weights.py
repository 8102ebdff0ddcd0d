"""Blend weights fitted per key: the ``optimized`` blend mode.

Each key keeps its recent ``(p_batch, p_online, won)`` rows (only outcomes both parts scored).
Every ``refit_every`` rows, ``w_batch`` is refitted: the weight in ``[0, 1]`` that minimises the
log loss of ``w * p_batch + (1 - w) * p_online`` over the window (scipy's bounded scalar
minimiser; the weights sum to 1, so one number is fitted), then shrunk toward the configured
weight as if ``prior_outcomes`` more rows had voted for it, so a short window cannot swing the
blend. The fit is a deterministic function of the rows, and rows and weight are checkpointed
with the key: a replay after a crash refits to the same weights.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize_scalar

from models.evaluation import log_loss

if TYPE_CHECKING:
    from models.version_blend import VersionBlend

#: Blended probabilities are clipped to ``[EPS, 1 - EPS]`` inside the log loss.
EPS = 1e-6
#: Decimals a row's probabilities are kept to.
ROW_DIGITS = 6


@dataclass(frozen=True)
class WeightFitConfig:
    """How the ``optimized`` mode fits a key's blend weight."""

    #: The configured weight of the batch model: the starting point and the prior.
    w_batch: float = 0.8
    #: Rows (outcomes scored by both parts) kept per key.
    window: int = 500
    #: Refit after this many new rows.
    refit_every: int = 100
    #: Pseudo-rows voting for ``w_batch``: the fit is ``(n * fitted + prior * w_batch) / (n +
    #: prior)`` over ``n`` rows.
    prior_outcomes: int = 100

    def __post_init__(self) -> None:
        if not 0.0 <= self.w_batch <= 1.0:
            raise ValueError(f"w_batch must be in [0, 1], got {self.w_batch}")
        if self.window < 1 or self.refit_every < 1 or self.prior_outcomes < 0:
            raise ValueError("window and refit_every must be >= 1, prior_outcomes >= 0")

    def fresh(self) -> BlendWindow:
        """A key that has observed nothing yet."""
        return BlendWindow(self, deque(maxlen=self.window))


@dataclass
class BlendWindow:
    """One key's recent rows and the batch weight last fitted on them (None: not yet): its
    :class:`~models.blend.FittedBlend` in the ``optimized`` mode."""

    config: WeightFitConfig
    rows: deque[tuple[float, float, bool]]
    w_batch: float | None = None
    since_refit: int = 0
    refits: int = 0

    def mix(self, p_batch: float, p_online: float) -> tuple[float, float, float] | None:
        """``(score, w_batch, w_online)`` with the fitted weight; None before the first fit."""
        w = self.w_batch
        if w is None:
            return None
        return w * p_batch + (1.0 - w) * p_online, w, 1.0 - w

    def observe(
        self, p_batch: float, p_online: float, won: bool, start: VersionBlend | None = None
    ) -> None:
        """Add one row; refit when ``refit_every`` rows have come since the last fit, shrunk
        toward ``start``'s weight (the active version's fitted blend) or the configured one.

        Probabilities are kept to ``ROW_DIGITS`` decimals (the rows are checkpointed with the
        key: about half the bytes of full floats, no effect on the fit).
        """
        self.rows.append((round(p_batch, ROW_DIGITS), round(p_online, ROW_DIGITS), won))
        self.since_refit += 1
        if self.since_refit >= self.config.refit_every:
            config = self.config
            if start is not None:
                config = replace(config, w_batch=start.w_batch)
            self.w_batch = fitted_weight(self.rows, config)
            self.since_refit = 0
            self.refits += 1


def fitted_weight(rows: Iterable[tuple[float, float, bool]], config: WeightFitConfig) -> float:
    """The log-loss-minimising batch weight of ``rows``, shrunk toward ``config.w_batch``.

    >>> rows = [(0.9, 0.5, True), (0.1, 0.5, False)] * 50  # the batch part is right
    >>> fitted_weight(rows, WeightFitConfig(prior_outcomes=0)) > 0.99
    True
    >>> fitted_weight([], WeightFitConfig(w_batch=0.8))
    0.8
    """
    data = np.array([(pb, po, 1.0 if won else 0.0) for pb, po, won in rows], dtype=float)
    if data.size == 0:
        return config.w_batch
    return weight_of(data[:, 0], data[:, 1], data[:, 2], config)


def weight_of(
    p_batch: np.ndarray, p_online: np.ndarray, labels: np.ndarray, config: WeightFitConfig
) -> float:
    """:func:`fitted_weight` on columns: the parts' probabilities and the 0/1 labels."""

    def loss(w: float) -> float:
        return log_loss(w * p_batch + (1.0 - w) * p_online, labels, EPS)

    best = minimize_scalar(loss, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-6})
    fitted = float(best.x)  # within the bounds, where the (clipped) loss is finite
    n = len(labels)
    return (n * fitted + config.prior_outcomes * config.w_batch) / (n + config.prior_outcomes)
