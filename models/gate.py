"""Champion / challenger gate: promote a new batch model only if it is better, significantly.

Both models score the same most recent holdout rows. The challenger must beat the champion on
the primary metric by at least ``margin`` *and* the improvement must be significant under a
paired bootstrap over holdout rows (scipy), one-sided at ``alpha``. Every number, and the
reason for the decision, is returned for the version's metadata and the ``model-updates`` topic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from models.trading import trading_report
from models.training import classification_metrics

#: Metrics the gate can decide on, and whether a bigger value is better.
PRIMARY_METRICS: Final = {"log_loss": False, "brier": False, "roc_auc": True, "accuracy": True}


@dataclass(frozen=True)
class GateConfig:
    """What "better" means and how sure the gate must be."""

    primary_metric: str = "log_loss"
    margin: float = 0.0
    alpha: float = 0.05
    n_resamples: int = 1000
    take_threshold: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.primary_metric not in PRIMARY_METRICS:
            raise ValueError(
                f"primary_metric must be one of {sorted(PRIMARY_METRICS)}, "
                f"got {self.primary_metric!r}"
            )


@dataclass(frozen=True)
class GateDecision:
    """The verdict and every number behind it."""

    promote: bool
    reason: str
    primary_metric: str
    improvement: float
    ci_low: float
    ci_high: float
    p_value: float
    margin: float
    alpha: float
    holdout_rows: int
    champion_version: str | None
    challenger: dict[str, Any]
    champion: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for metadata and messages."""
        return asdict(self)


def holdout_report(
    labels: np.ndarray,
    p_win: np.ndarray,
    realized_rr: np.ndarray | None,
    config: GateConfig,
) -> dict[str, Any]:
    """Classification metrics plus the trading metrics of the trades taken at
    ``config.take_threshold``, with bootstrap intervals (:func:`models.trading.trading_report`)."""
    return {
        **classification_metrics(labels, p_win),
        "trading": trading_report(
            p_win,
            labels,
            realized_rr,
            config.take_threshold,
            n_resamples=config.n_resamples,
            level=1.0 - 2.0 * config.alpha,
            seed=config.seed,
        ),
    }


def _per_row_improvement(metric: str, labels: np.ndarray, p_old: np.ndarray, p_new: np.ndarray):
    """Per-row improvement of the new model for row-decomposable metrics, else None."""
    if metric == "log_loss":

        def loss(p: np.ndarray) -> np.ndarray:
            p = np.clip(p, 1e-15, 1 - 1e-15)
            return -(labels * np.log(p) + (1 - labels) * np.log(1 - p))

        return loss(p_old) - loss(p_new)
    if metric == "brier":
        return (p_old - labels) ** 2 - (p_new - labels) ** 2
    if metric == "accuracy":
        return ((p_new > 0.5) == labels).astype(float) - ((p_old > 0.5) == labels).astype(float)
    return None


def decide(
    labels: np.ndarray,
    p_challenger: np.ndarray,
    p_champion: np.ndarray,
    realized_rr: np.ndarray | None,
    config: GateConfig,
    champion_version: str | None,
) -> GateDecision:
    """Compare challenger and champion on the same holdout rows and decide."""
    metric = config.primary_metric
    labels = np.asarray(labels, dtype=float)
    rows = len(labels)
    challenger = holdout_report(labels, p_challenger, realized_rr, config)
    champion = holdout_report(labels, p_champion, realized_rr, config)
    per_row = _per_row_improvement(metric, labels, p_champion, p_challenger)
    rng = np.random.default_rng(config.seed)
    level = 1.0 - 2.0 * config.alpha  # the lower bound is then a one-sided alpha bound
    if per_row is not None:
        improvement = float(per_row.mean())
        result = stats.bootstrap(
            (per_row,),
            np.mean,
            n_resamples=config.n_resamples,
            confidence_level=level,
            method="percentile",
            random_state=rng,
            vectorized=True,
        )
    else:

        def auc_gain(y: np.ndarray, old: np.ndarray, new: np.ndarray) -> float:
            if len(np.unique(y)) < 2:
                return 0.0
            return float(skm.roc_auc_score(y, new) - skm.roc_auc_score(y, old))

        improvement = auc_gain(labels, p_champion, p_challenger)
        result = stats.bootstrap(
            (labels, p_champion, p_challenger),
            auc_gain,
            paired=True,
            vectorized=False,
            n_resamples=config.n_resamples,
            confidence_level=level,
            method="percentile",
            random_state=rng,
        )
    distribution = np.asarray(result.bootstrap_distribution)
    p_value = float((distribution <= 0.0).mean())
    ci_low, ci_high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    against = champion_version or "the base-rate predictor (no active model)"
    numbers = (
        f"{metric} {challenger[metric]:.5f} vs {champion[metric]:.5f} of {against}: "
        f"improvement {improvement:+.5f}, {100 * level:.0f}% CI [{ci_low:+.5f}, {ci_high:+.5f}], "
        f"one-sided p {p_value:.4f}"
    )
    if improvement < config.margin:
        verdict = f"rejected: improvement is below the required margin {config.margin}"
        promote = False
    elif p_value >= config.alpha:
        promote, verdict = False, f"rejected: not significant at alpha {config.alpha}"
    else:
        promote, verdict = True, "promote: better by the margin and significant"
    return GateDecision(
        promote=promote,
        reason=f"{verdict}; {numbers} on {rows} holdout rows",
        primary_metric=metric,
        improvement=improvement,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        margin=config.margin,
        alpha=config.alpha,
        holdout_rows=rows,
        champion_version=champion_version,
        challenger=challenger,
        champion=champion,
    )


@dataclass(frozen=True)
class LiveVerdict:
    """Whether live (shadow) evidence allows promoting a staged version, and its summary."""

    refusal: str | None
    summary: str


def live_verdict(live: dict[str, Any] | None, min_outcomes: int) -> LiveVerdict:
    """The gate's live rule for a staged version (:meth:`models.shadow.ShadowTally.report`):
    with ``min_outcomes`` > 0, at least that many outcomes scored by both it and the champion,
    and a log loss significantly better than the champion's on them (the report's alpha and
    margin); with 0, live evidence is only reported."""
    paired = 0 if live is None else int(live.get("paired") or 0)
    improvement = None if live is None else live.get("improvement")
    summary = "no live outcomes yet"
    if live is not None and improvement:
        summary = (
            f"live: {paired:,} outcomes, log loss {live['staged']['log_loss']:.4f} vs champion "
            f"{live['champion']['log_loss']:.4f}, p = {improvement['p_value']:.3g}"
        )
    if min_outcomes <= 0:
        return LiveVerdict(None, summary)
    if paired < min_outcomes or not improvement:
        return LiveVerdict(
            f"{paired:,} live outcomes scored next to the champion, "
            f"retrain.shadow_min_outcomes is {min_outcomes:,}",
            summary,
        )
    if not improvement["better"]:
        return LiveVerdict(
            f"not better live than the champion ({summary}, improvement "
            f"{improvement['mean']:.5f} [{improvement['ci_low']:.5f}, "
            f"{improvement['ci_high']:.5f}])",
            summary,
        )
    return LiveVerdict(None, summary)
