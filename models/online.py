"""The online learner: one River ``StandardScaler | LogisticRegression`` per model key."""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

from river import linear_model, optim, preprocessing

from models.decay import DecayedStandardScaler, fading_factor


@dataclass(frozen=True)
class OnlineConfig:
    """Hyper-parameters of the online learner (hyper-parameters live in settings, not in state)."""

    learning_rate: float = 0.01
    decay_half_life: float | None = None
    weight_by_rr: bool = False
    max_sample_weight: float = 5.0
    #: Outcome ids remembered per key so a repeated one is not learned twice (0 = off).
    dedupe_window: int = 1000

    @property
    def factor(self) -> float:
        """Per-update fading factor (1.0 when decay is off)."""
        return fading_factor(self.decay_half_life)

    def sample_weight(self, realized_rr: float | None) -> float:
        """Learning weight of one outcome: ``|realized_rr|`` (capped) when enabled, else 1."""
        if not self.weight_by_rr or realized_rr is None:
            return 1.0
        return min(abs(realized_rr), self.max_sample_weight)


class OnlineLearner:
    """A River ``StandardScaler | LogisticRegression`` with optional window decay.

    With decay on, old trades fade in both parts: the scaler's statistics are exponentially
    weighted (see :class:`DecayedStandardScaler`) and, after each update, the model's weights and
    intercept are multiplied by the same fading factor, so each past update's contribution to the
    parameters halves every ``decay_half_life`` outcomes. With decay off this is plain River.

    >>> learner = OnlineLearner(OnlineConfig())
    >>> learner.predict_proba({"a": 1.0})
    0.5
    >>> learner.learn({"a": 1.0}, True)
    >>> learner.updates
    1
    """

    def __init__(self, config: OnlineConfig) -> None:
        self.config = config
        self._factor = config.factor
        scaler = (
            preprocessing.StandardScaler()
            if self._factor == 1.0
            else DecayedStandardScaler(self._factor)
        )
        model = linear_model.LogisticRegression(optimizer=optim.SGD(config.learning_rate))
        self.scaler = scaler
        self.model = model
        self.updates = 0

    def predict_proba(self, x: dict[str, float]) -> float:
        """Probability that a trade with features ``x`` wins.

        The pipeline's two steps called directly, as ``Pipeline.predict_proba_one`` calls them
        (same values; its plan and parameter routing cost ~1 us an outcome, measured in
        ``bench/learner_cost``; ``tests/unit/test_online_learner.py`` checks equality).
        """
        return self.model.predict_proba_one(self.scaler.transform_one(x))[True]

    def learn(self, x: dict[str, float], won: bool, weight: float = 1.0) -> None:
        """Learn one closed trade, then fade the past if decay is on.

        ``Pipeline.learn_one``'s steps, called directly: the scaler learns ``x`` and
        transforms it, the classifier learns the scaled ``x`` (with the sample weight).
        """
        scaler = self.scaler
        scaler.learn_one(x)
        if weight == 1.0:
            self.model.learn_one(scaler.transform_one(x), won)
        else:
            self.model.learn_one(scaler.transform_one(x), won, w=weight)
        if self._factor != 1.0:
            model = self.model
            model._weights = model._weights * self._factor
            model.intercept *= self._factor
        self.updates += 1

    def learn_checked(self, x: dict[str, float], won: bool, weight: float = 1.0) -> bool:
        """Learn one trade unless that would leave a non-finite parameter; True when learned.

        The second line of numeric safety (the contract bounds features first): if the update
        makes any weight, the intercept or the scaler statistics of ``x``'s features NaN or
        infinite, or raises, the learner is put back exactly as it was and False is returned.
        """
        saved = self._save()
        try:
            self.learn(x, won, weight)
            if self._finite():
                return True
        except (ArithmeticError, ValueError):
            pass
        self._restore(saved)
        return False

    def _save(self) -> tuple:
        # Plain-dict copies: measured 0.5 us for 8 features (Counter.copy alone costs 0.8 us).
        scaler, model = self.scaler, self.model
        return (
            dict(scaler.counts),
            dict(scaler.means),
            dict(scaler.vars),
            model._weights.to_dict(),
            model.intercept,
            model.optimizer.n_iterations,
            self.updates,
        )

    def _restore(self, saved: tuple) -> None:
        scaler, model = self.scaler, self.model
        counts, means, vars_, weights, intercept, iterations, updates = saved
        scaler.counts = collections.Counter(counts)
        scaler.means = collections.defaultdict(float, means)
        scaler.vars = collections.defaultdict(float, vars_)
        model._weights = type(model._weights)(weights)
        model.intercept = intercept
        model.optimizer.n_iterations = iterations
        self.updates = updates

    def _finite(self) -> bool:
        # A sum is finite when every term is (and the terms are far below 1e308): one pass.
        scaler, model = self.scaler, self.model
        total = model.intercept + sum(model._weights.values())
        total += sum(scaler.means.values()) + sum(scaler.vars.values())
        if math.isfinite(total):
            return True
        values = [model.intercept, *model._weights.values()]
        values += [*scaler.means.values(), *scaler.vars.values()]
        return all(math.isfinite(v) for v in values)

    @property
    def weights(self) -> dict[str, float]:
        """The model's feature weights (on standardised features)."""
        return self.model.weights

    @property
    def intercept(self) -> float:
        """The model's intercept."""
        return float(self.model.intercept)
