"""A logistic meta-learner per key: the ``stacked`` blend mode.

The meta-learner is a River ``LogisticRegression`` on the two parts' log-odds and their
product (``interaction``, the default), their log-odds, their probabilities, or log-odds and
probabilities (``StackConfig.inputs``), learned online from every outcome both parts scored,
*after* it was scored (prequential, like every other model here). It starts where the fixed
blend is: with ``logits`` inputs its weights are the configured ``w_batch`` / ``w_online`` on the
log-odds and the intercept is 0, so its first scores are a log-odds mix of the parts. Until it
has learned ``min_outcomes`` outcomes the fixed linear blend scores (an explicit warm-up); then
its own probability does. Its weights, intercept and update count are checkpointed with the
key, so a replay after a crash continues exactly like an uninterrupted run.

Unlike the linear modes, the stacked score is not ``w_batch * p_batch + w_online * p_online``:
it can recalibrate (an intercept, weights that need not sum to 1). Signals still carry
``w_batch`` / ``w_online``: each part's share of the meta-learner's absolute weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from river import linear_model, optim

if TYPE_CHECKING:
    from models.version_blend import StackStart, VersionBlend

#: Probabilities are clipped to ``[EPS, 1 - EPS]`` before taking log-odds (|logit| <= 13.8).
EPS = 1e-6

StackInputs = Literal["interaction", "logits", "probabilities", "both"]
STACK_INPUTS: tuple[StackInputs, ...] = ("interaction", "logits", "probabilities", "both")
#: The ``interaction`` input is ``logit_batch * logit_online / PRODUCT_SCALE``. Measured with
#: ``bench/blend_quality`` (2 seeds): unscaled, Hyperplane's stacked log loss was 0.35 / 0.32
#: against 0.29 / 0.28 scaled by 4 (SGD steps on a product up to ~190 overshoot).
PRODUCT_SCALE = 4.0

#: The meta-learner's input names per part.
PARTS = {"batch": ("p_batch", "logit_batch"), "online": ("p_online", "logit_online")}


@dataclass(frozen=True)
class StackConfig:
    """How the ``stacked`` mode's meta-learner is built and when it takes over."""

    #: Configured batch weight: the warm-up blend and the meta-learner's starting point.
    w_batch: float = 0.8
    #: ``interaction`` (default): measured with ``bench/blend_quality`` (2 seeds each), the
    #: product lets the meta-learner trust the online part where the parts disagree: SEA
    #: accuracy 0.884 / 0.886 against 0.875 / 0.874 on log-odds alone (online 0.888 / 0.890),
    #: better log loss on SEA, Agrawal and RandomRBF, equal on the demo market, slightly worse
    #: on Hyperplane (0.294 / 0.285 against 0.292 / 0.283).
    inputs: StackInputs = "interaction"
    learning_rate: float = 0.01
    #: Outcomes the meta-learner learns before its score replaces the fixed blend.
    min_outcomes: int = 100

    def __post_init__(self) -> None:
        if not 0.0 <= self.w_batch <= 1.0:
            raise ValueError(f"w_batch must be in [0, 1], got {self.w_batch}")
        if self.inputs not in STACK_INPUTS:
            raise ValueError(f"inputs must be one of {STACK_INPUTS}, got {self.inputs!r}")
        if not self.learning_rate > 0 or self.min_outcomes < 0:
            raise ValueError("learning_rate must be > 0 and min_outcomes >= 0")

    def initial_weights(self) -> dict[str, float]:
        """The meta-learner's starting weights: the configured mix, on the log-odds when they
        are inputs, else on the probabilities scaled so the slope at 0.5 matches (x4)."""
        w_online = 1.0 - self.w_batch
        if self.inputs == "probabilities":
            return {"p_batch": 4.0 * self.w_batch, "p_online": 4.0 * w_online}
        weights = {"logit_batch": self.w_batch, "logit_online": w_online}
        if self.inputs == "both":
            weights.update(p_batch=0.0, p_online=0.0)
        elif self.inputs == "interaction":
            weights["logit_product"] = 0.0
        return weights

    def initial_intercept(self) -> float:
        """The starting intercept: 0 on log-odds; -2 centres the x4 probability weights."""
        return -2.0 if self.inputs == "probabilities" else 0.0

    def fresh(self) -> MetaLearner:
        """A key's meta-learner that has learned nothing yet."""
        return MetaLearner(self)


def _logit(p: float) -> float:
    p = min(max(p, EPS), 1.0 - EPS)
    return math.log(p / (1.0 - p))


class MetaLearner:
    """One key's stacking model: its :class:`~models.blend.FittedBlend` in the ``stacked`` mode.

    >>> meta = MetaLearner(StackConfig(w_batch=0.8))
    >>> round(meta.score(0.7, 0.7), 6)  # a log-odds mix of two equal parts is that part
    0.7
    >>> meta.observe(0.7, 0.4, True)
    >>> meta.updates
    1
    """

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.model = linear_model.LogisticRegression(
            optimizer=optim.SGD(config.learning_rate),
            intercept_init=config.initial_intercept(),
            intercept_lr=config.learning_rate,
        )
        self.model._weights = type(self.model._weights)(config.initial_weights())
        self.updates = 0

    @property
    def ready(self) -> bool:
        """Whether its score replaces the fixed blend (``min_outcomes`` learned)."""
        return self.updates >= self.config.min_outcomes

    def inputs(self, p_batch: float, p_online: float) -> dict[str, float]:
        """The meta-learner's features for one pair of part probabilities."""
        kind = self.config.inputs
        if kind == "probabilities":
            return {"p_batch": p_batch, "p_online": p_online}
        logit_batch, logit_online = _logit(p_batch), _logit(p_online)
        x = {"logit_batch": logit_batch, "logit_online": logit_online}
        if kind == "interaction":
            x["logit_product"] = logit_batch * logit_online / PRODUCT_SCALE
        elif kind == "both":
            x["p_batch"], x["p_online"] = p_batch, p_online
        return x

    def score(self, p_batch: float, p_online: float) -> float:
        """The stacked probability of a win."""
        return self.model.predict_proba_one(self.inputs(p_batch, p_online))[True]

    def mix(self, p_batch: float, p_online: float) -> tuple[float, float, float] | None:
        """``(score, w_batch, w_online)`` once ready (see :meth:`part_weights`), else None."""
        if not self.ready:
            return None
        return (self.score(p_batch, p_online), *self.part_weights())

    def observe(
        self, p_batch: float, p_online: float, won: bool, start: VersionBlend | None = None
    ) -> None:
        """Learn one outcome that both parts scored; the first one starts the meta-learner from
        ``start``'s fitted meta-learner (the active version's, same inputs) when there is one."""
        if not self.updates and start is not None and start.stack is not None:
            self.start_from(start.stack)
        self.model.learn_one(self.inputs(p_batch, p_online), won)
        self.updates += 1

    def start_from(self, stack: StackStart) -> bool:
        """Take a fitted meta-learner's weights and intercept if they are for this one's
        inputs; True when taken."""
        if set(stack.weights) != set(self.config.initial_weights()):
            return False
        # A copy: River's VectorDict wraps the dict it is given and learning writes to it.
        self.model._weights = type(self.model._weights)(dict(stack.weights))
        self.model.intercept = stack.intercept
        return True

    def part_weights(self) -> tuple[float, float]:
        """Each part's share of the absolute weights of its own inputs (what signals report as
        ``w_batch`` / ``w_online``; the product of both is left out); 0.5 each when every
        weight is 0."""
        weights = self.model._weights
        batch = sum(abs(weights.get(name, 0.0)) for name in PARTS["batch"])
        online = sum(abs(weights.get(name, 0.0)) for name in PARTS["online"])
        total = batch + online
        if not total > 0.0:
            return 0.5, 0.5
        return batch / total, online / total
