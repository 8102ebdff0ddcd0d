"""Window decay: a half-life in outcomes turned into the per-update fading factor.

Two spellings of one decay: a half-life (outcomes after which an old trade weighs half), or the
design's window and decay factor (an outcome ``k`` windows old weighs ``decay_factor ** k``,
smoothly in between: one more outcome multiplies every older weight by
``decay_factor ** (1 / window_size)``). :func:`half_life_of_window` converts the second into the
first, which is the one the learner uses.
"""

from __future__ import annotations

import collections
import math

from river import preprocessing


def half_life_of_window(window_size: int, decay_factor: float) -> float | None:
    """The half-life (in outcomes) of a decay of ``decay_factor`` per ``window_size`` outcomes;
    None (no decay) for a factor of 1.

    >>> round(half_life_of_window(1000, 0.95))
    13513
    >>> half_life_of_window(1000, 1.0) is None
    True
    >>> half_life_of_window(100, 0.5)
    100.0
    """
    if window_size < 1:
        raise ValueError(f"window_size must be at least 1, got {window_size}")
    if not 0.0 < decay_factor <= 1.0:
        raise ValueError(f"decay_factor must be in (0, 1], got {decay_factor}")
    if decay_factor == 1.0:
        return None
    return window_size * math.log(0.5) / math.log(decay_factor)


def fading_factor(half_life: float | None) -> float:
    """Per-update multiplier so that an update weighs half after ``half_life`` more updates.

    ``None`` means no decay (factor 1.0), under which every learner reduces exactly to plain River.

    >>> fading_factor(None)
    1.0
    >>> round(fading_factor(1.0), 3)
    0.5
    """
    if half_life is None:
        return 1.0
    if half_life <= 0:
        raise ValueError(f"half_life must be positive, got {half_life}")
    return 0.5 ** (1.0 / half_life)


class DecayedStandardScaler(preprocessing.StandardScaler):
    """River's ``StandardScaler`` with exponentially faded statistics.

    River's Welford update divides by the count ``n``. Replacing ``n`` by the decayed weight
    ``W <- factor * W + 1`` gives the exact exponentially weighted mean and (population) variance
    with weights ``factor ** age``: the same two formulas, so ``factor == 1`` is River exactly.
    River's ``AdaptiveStandardScaler`` was not used: its EW mean starts at 0 and is biased over the
    first outcomes, and it has no setting that reduces to the plain scaler.
    """

    def __init__(self, factor: float = 1.0) -> None:
        super().__init__(with_std=True)
        if not 0.0 < factor <= 1.0:
            raise ValueError(f"factor must be in (0, 1], got {factor}")
        self.factor = factor
        self.counts: collections.Counter = collections.Counter()

    def learn_one(self, x: dict) -> None:
        """Fold one observation into the faded mean and variance of each feature."""
        counts, means, vars_, factor = self.counts, self.means, self.vars, self.factor
        for i, xi in x.items():
            count = counts[i] * factor + 1.0
            counts[i] = count
            old_mean = means[i]
            means[i] += (xi - old_mean) / count
            vars_[i] += ((xi - old_mean) * (xi - means[i]) - vars_[i]) / count


class FadingMean:
    """Exponentially weighted mean with no start-up bias (weights ``factor ** age``, normalised).

    >>> mean = FadingMean(fading_factor(10))
    >>> for x in [0.0, 1.0, 1.0]:
    ...     mean.update(x)
    >>> round(mean.value, 4)
    0.6895
    """

    def __init__(self, factor: float, value: float | None = None, weight: float = 0.0) -> None:
        self.factor = factor
        self.value = value
        self.weight = weight

    def update(self, x: float) -> None:
        """Fold one observation in."""
        self.weight = self.weight * self.factor + 1.0
        if self.value is None:
            self.value = x
        else:
            self.value += (x - self.value) / self.weight
