"""Hyper-parameter tuning with Optuna over walk-forward folds (the ``tuning`` extra).

A study samples the family's parameters from its search space with a seeded TPE sampler; each
trial is scored by :func:`models.cross_validation.cross_validate` on the part of the window
before the holdout (walk-forward: every fold trains on the past only) and reports its mean log
loss after every fold, so the median pruner stops a trial that is already worse than the
median of the earlier trials at the same fold. The configuration as given (the defaults) is
scored on the same folds first: the best trial's parameters are adopted only when they beat
it, so tuning never makes a retrain worse on its own folds. The gate's holdout is never seen.

Optuna is imported only here, and only when tuning is on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any, Literal

import pandas as pd

from models.cross_validation import CrossValidation, cross_validate
from models.extras import optional_module
from models.families import family
from models.training import TrainConfig

log = logging.getLogger(__name__)

#: Trials kept in the metadata's history (the study summary keeps the counts of all).
HISTORY_LIMIT = 100


class TuningError(ValueError):
    """The tuning settings cannot be used (an empty or malformed search space)."""


@dataclass(frozen=True)
class Dimension:
    """One parameter's range: ``kind`` float/int between ``low`` and ``high`` (``log``: on a
    log scale), or ``categorical`` among ``choices``."""

    name: str
    kind: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.kind == "categorical":
            if not self.choices:
                raise TuningError(f"search dimension {self.name!r} has no choices")
            return
        if self.low is None or self.high is None or not self.low < self.high:
            raise TuningError(f"search dimension {self.name!r} needs low < high")
        if self.log and self.low <= 0:
            raise TuningError(f"search dimension {self.name!r} is on a log scale: low > 0")

    def suggest(self, trial: Any) -> Any:
        """The trial's value for this parameter."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def as_dict(self) -> dict[str, Any]:
        """The dimension as the settings spell it."""
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        return {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class TuningConfig:
    """A study's budget (``trials``, or ``time_s`` seconds, or both: the first reached ends
    it), its folds and its search space (the family's parameters, in its library's names)."""

    space: Sequence[Dimension]
    trials: int | None = 20
    time_s: float | None = None
    folds: int = 3
    seed: int = 0
    #: Trials run before the median pruner may stop one (and folds before it looks).
    pruner_startup_trials: int = 5

    def __post_init__(self) -> None:
        if not self.space:
            raise TuningError("tuning needs a search space with at least one parameter")
        if self.trials is None and self.time_s is None:
            raise TuningError("tuning needs a budget: a number of trials or a time")
        if self.folds < 2:
            raise TuningError("tuning needs at least 2 folds")


#: ``on_trial(number, cross-validated log loss or None, state, best log loss so far or None)``.
TrialCallback = Callable[[int, float | None, str, float | None], None]


@dataclass(frozen=True)
class TuningResult:
    """The configuration to train with and the study's summary for the version's metadata."""

    config: TrainConfig
    summary: dict[str, Any] = field(default_factory=dict)


def optuna_module() -> ModuleType:
    """Optuna, or one line naming the extra that installs it."""
    return optional_module("optuna", "retrain.tuning", "tuning")


def tune(
    development: pd.DataFrame,
    features: Sequence[str],
    config: TrainConfig,
    tuning: TuningConfig,
    on_trial: TrialCallback | None = None,
) -> TuningResult:
    """Search ``tuning.space`` for ``config.family`` on walk-forward folds of ``development``
    (time-sorted rows before the holdout); returns the configuration to train with."""
    optuna = optuna_module()
    chosen = family(config.family)
    chosen.module()
    started = time.monotonic()
    baseline = cross_validate(development, features, config, tuning.folds, chosen)
    if not baseline.folds:
        raise TuningError("tuning found no fold with both classes to score")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=tuning.seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=tuning.pruner_startup_trials, n_warmup_steps=1
        ),
    )

    def objective(trial: Any) -> float:
        sampled = {d.name: d.suggest(trial) for d in tuning.space}
        trial_config = replace(config, params={**config.params, **sampled})

        def report(fold: int, mean_log_loss: float) -> None:
            trial.report(mean_log_loss, fold)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = cross_validate(development, features, trial_config, tuning.folds, chosen, report)
        if len(result.folds) < len(baseline.folds):
            raise TuningError("a trial scored fewer folds than the defaults")
        return result.mean_log_loss

    def announce(study: Any, trial: Any) -> None:
        if on_trial is None:
            return
        best = _best_trial(study)
        on_trial(trial.number, trial.value, trial.state.name.lower(), best and best.value)

    study.optimize(
        objective,
        n_trials=tuning.trials,
        timeout=tuning.time_s,
        catch=(Exception,),
        callbacks=[announce],
    )
    summary = _summary(study, baseline, tuning, config, time.monotonic() - started)
    summary["development"] = {
        "rows": len(development),
        "first_ts": int(development["ts"].iloc[0]),
        "last_ts": int(development["ts"].iloc[-1]),
    }
    if summary["adopted"]:
        best_params = summary["best"]["params"]
        config = replace(config, params={**config.params, **best_params})
    return TuningResult(config=config, summary=summary)


def trial_line(number: int, loss: float | None, state: str, best: float | None) -> str:
    """A progress line for one finished trial."""
    shown = "" if loss is None else f" cv log loss {loss:.4f}"
    best_shown = "" if best is None else f" (best {best:.4f})"
    return f"tuning trial {number} {state}{shown}{best_shown}"


def _best_trial(study: Any) -> Any | None:
    """Optuna's best completed trial, or None before the first one."""
    try:
        return study.best_trial
    except ValueError:  # no trial completed yet
        return None


def _summary(
    study: Any,
    baseline: CrossValidation,
    tuning: TuningConfig,
    config: TrainConfig,
    elapsed: float,
) -> dict[str, Any]:
    """``metadata["tuning"]``: the study's settings, counts, baseline, best and history."""
    states: dict[str, int] = {}
    for trial in study.trials:
        name = trial.state.name.lower()
        states[name] = states.get(name, 0) + 1
    best = _best_trial(study)
    baseline_loss = baseline.mean_log_loss
    adopted = best is not None and math.isfinite(best.value) and best.value < baseline_loss
    summary: dict[str, Any] = {
        "library": "optuna",
        "sampler": "TPESampler",
        "pruner": "MedianPruner",
        "seed": tuning.seed,
        "budget": {"trials": tuning.trials, "time_s": tuning.time_s},
        "folds": tuning.folds,
        "scheme": config.cv_scheme,
        "space": {d.name: d.as_dict() for d in tuning.space},
        "trials": {"total": len(study.trials), **states},
        "elapsed_s": round(elapsed, 3),
        "baseline": {"cv_log_loss": baseline_loss, "params": dict(config.params)},
        "best": None
        if best is None
        else {"number": best.number, "cv_log_loss": float(best.value), "params": best.params},
        "adopted": adopted,
        "gain": None if best is None else baseline_loss - float(best.value),
        "history": [
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "cv_log_loss": t.value,
                "params": t.params,
            }
            for t in study.trials[:HISTORY_LIMIT]
        ],
    }
    if not adopted:
        summary["reason"] = (
            "no trial completed"
            if best is None
            else "no trial beat the defaults on the folds: trained with the defaults"
        )
    return summary


def dimensions(space: Mapping[str, Mapping[str, Any]]) -> list[Dimension]:
    """A search space as the settings spell it (``{name: {type, low, high, log} or {type:
    categorical, choices}}``) as dimensions."""
    out = []
    for name, spec in space.items():
        kind = spec.get("type", "float")
        if kind not in ("float", "int", "categorical"):
            raise TuningError(f"search dimension {name!r}: type must be float, int or categorical")
        out.append(
            Dimension(
                name=name,
                kind=kind,
                low=spec.get("low"),
                high=spec.get("high"),
                log=bool(spec.get("log", False)),
                choices=tuple(spec.get("choices") or ()),
            )
        )
    return out
