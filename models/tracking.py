"""Experiment tracking of retrains: what one run records, independent of the tracking server.

A retrain's metadata (:func:`models.retrain.challenge`) becomes a run's parameters (family,
hyper-parameters, the family's own and tuned parameters, window, split, source, parent
version), metrics (validation, the gate's holdout for challenger and champion with trading
metrics, each cross-validation fold as a step, each tuning trial as a step) and tags (family,
reason, parent, the gate's verdict). The adapter (:mod:`models.adapters.mlflow_tracker`) sends
them with the model artifact; the version's metadata keeps the run id
(``metadata["tracking"]``) and the run is tagged with the version once it is stored.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

#: MLflow's limit on a parameter value's length.
PARAM_VALUE_LIMIT = 500


@dataclass(frozen=True)
class TrackedRun:
    """Where a retrain's run lives: for ``metadata["tracking"]``."""

    run_id: str
    experiment: str
    uri: str

    def as_metadata(self) -> dict[str, str]:
        """``metadata["tracking"]``."""
        return {"system": "mlflow", "run_id": self.run_id, "experiment": self.experiment}


class RunTracker(Protocol):
    """Records retrains as runs of an experiment."""

    def record(self, metadata: Mapping[str, Any], model: bytes, model_file: str) -> TrackedRun:
        """One finished run: parameters, metrics, tags and the model artifact."""
        ...

    def link(self, run_id: str, version: str, action: str) -> None:
        """Tag the run with the version it became and what the retrainer did with it."""
        ...


@dataclass(frozen=True)
class Metric:
    """One metric value (``step``: a fold's or a trial's number, else 0)."""

    name: str
    value: float
    step: int = 0


def run_params(metadata: Mapping[str, Any]) -> dict[str, str]:
    """A run's parameters: everything that made the model what it is."""
    params: dict[str, Any] = {
        "family": metadata.get("family"),
        "source": metadata.get("source"),
        "parent_version": metadata.get("parent_version"),
        "features": ",".join(metadata.get("features") or ()),
        "data_fingerprint": metadata.get("data_fingerprint"),
    }
    hyper = dict(metadata.get("hyperparameters") or {})
    own = hyper.pop("params", None) or {}
    params.update({f"train.{k}": v for k, v in hyper.items() if not isinstance(v, dict)})
    params.update({f"params.{k}": v for k, v in own.items()})
    for part, rows in (metadata.get("rows") or {}).items():
        params[f"rows.{part}"] = rows
    for name in ("first_ts", "last_ts", "rows"):
        params[f"window.{name}"] = (metadata.get("window") or {}).get(name)
    warm = metadata.get("warm_start") or {}
    if warm:
        params["warm_start.used"] = warm.get("used")
        params["warm_start.from_version"] = warm.get("from_version")
    tuning = metadata.get("tuning") or {}
    if tuning:
        params["tuning.budget_trials"] = (tuning.get("budget") or {}).get("trials")
        params["tuning.budget_time_s"] = (tuning.get("budget") or {}).get("time_s")
        params["tuning.folds"] = tuning.get("folds")
        params["tuning.adopted"] = tuning.get("adopted")
    return {k: str(v)[:PARAM_VALUE_LIMIT] for k, v in params.items() if v is not None}


def run_metrics(metadata: Mapping[str, Any]) -> list[Metric]:
    """A run's metrics: validation, holdout (challenger, champion, trading), folds, trials."""
    metrics = list(_numbers("validation", metadata.get("validation_metrics") or {}))
    gate = metadata.get("gate") or {}
    metrics += _numbers("holdout", gate.get("challenger") or {})
    metrics += _numbers("champion_holdout", gate.get("champion") or {})
    for name in ("improvement", "ci_low", "ci_high", "p_value"):
        metrics += _numbers(f"gate.{name}", gate.get(name))
    metrics += _numbers("model.rounds", (metadata.get("model") or {}).get("rounds"))
    cv = metadata.get("cross_validation") or {}
    for number, fold in enumerate(cv.get("folds") or ()):
        metrics += _numbers("cv.fold", fold.get("metrics") or {}, step=number)
    for name, spread in (cv.get("summary") or {}).items():
        metrics += _numbers(f"cv.{name}", spread)
    tuning = metadata.get("tuning") or {}
    for trial in tuning.get("history") or ():
        metrics += _numbers("tuning.trial_cv_log_loss", trial.get("cv_log_loss"), trial["number"])
    metrics += _numbers(
        "tuning.baseline_cv_log_loss", (tuning.get("baseline") or {}).get("cv_log_loss")
    )
    metrics += _numbers("tuning.best_cv_log_loss", (tuning.get("best") or {}).get("cv_log_loss"))
    return metrics


def run_tags(metadata: Mapping[str, Any]) -> dict[str, str]:
    """A run's tags: what people filter runs by."""
    gate = metadata.get("gate") or {}
    tags = {
        "streamlearn.family": metadata.get("family"),
        "streamlearn.reason": metadata.get("reason"),
        "streamlearn.parent_version": metadata.get("parent_version"),
        "streamlearn.gate": None if not gate else ("pass" if gate.get("promote") else "reject"),
        "streamlearn.gate_reason": gate.get("reason"),
    }
    return {k: str(v)[:5000] for k, v in tags.items() if v is not None}


def _numbers(prefix: str, data: Any, step: int = 0) -> Iterator[Metric]:
    """Every finite number in ``data`` (nested mappings joined with dots) as metrics."""
    if isinstance(data, bool):
        yield Metric(prefix, float(data), step)
    elif isinstance(data, int | float):
        if math.isfinite(float(data)):
            yield Metric(prefix, float(data), step)
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from _numbers(f"{prefix}.{key}", value, step)
