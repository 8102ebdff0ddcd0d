"""``streamlearn train``: fit the batch model on closed trades, store it, activate it."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import pandas as pd
import redis
from redis.cluster import RedisCluster

from app.composition import (
    blend_training,
    blocking_redis_client,
    contract_spec,
    kafka_connection,
    model_key_column,
    model_store,
    redis_connection,
    registry_on,
    train_config,
    tuning_config,
)
from config import Settings
from models.candidate import train_candidate
from models.retrain import fitted_blend
from models.training import TrainedModel, TrainingDataError, load_outcomes_file
from models.tuning import trial_line
from streams.model_updates import ModelUpdatePublisher, from_registry_event
from streams.windows import read_window


@dataclass(frozen=True)
class TrainOptions:
    """Where to read trades from and what to do with the model."""

    from_file: str | None = None
    from_topic: bool = False
    max_rows: int | None = None
    activate: bool = True


def outcomes_from_topic(settings: Settings, max_rows: int | None = None) -> pd.DataFrame:
    """Valid outcomes on the ``trade-outcomes`` topic (the newest ``max_rows``) as a table."""
    kafka = kafka_connection(settings)
    if kafka is None:
        raise TrainingDataError("--from-topic needs KAFKA_BOOTSTRAP_SERVERS")
    return read_window(
        kafka, settings.topics.outcomes, contract_spec(settings), last_outcomes=max_rows
    )


def blend_metadata(settings: Settings, trained: TrainedModel) -> dict[str, Any] | None:
    """The version's ``blend`` metadata, fitted as the retrainer fits it (None when
    ``retrain.blend_folds`` is 0)."""
    blend = blend_training(settings)
    if blend is None:
        return None
    key_column = model_key_column(settings, trained.window.columns)
    return fitted_blend(trained, settings.model.features, blend, key_column)


def train_and_store(
    settings: Settings,
    frame: pd.DataFrame,
    source: str,
    activate_with: redis.Redis | RedisCluster | None,
    reason: str = "manual",
    verbose: bool = True,
) -> tuple[str, dict[str, Any]]:
    """Train, store the version, optionally activate it; returns (version, metadata)."""

    def progress(round_: int, logloss: float) -> None:
        if verbose:
            print(f"  round {round_:4d}  validation logloss {logloss:.4f}", file=sys.stderr)

    def on_trial(number: int, loss: float | None, state: str, best: float | None) -> None:
        if verbose:
            print(f"  {trial_line(number, loss, state, best)}", file=sys.stderr)

    trained = train_candidate(
        frame,
        settings.model.features,
        train_config(settings),
        source=source,
        progress=progress,
        tuning=tuning_config(settings),
        on_trial=on_trial,
    )
    store = model_store(settings)
    metadata = {**trained.metadata, "reason": reason, "parent_version": None}
    blend = blend_metadata(settings, trained)
    if blend is not None:
        metadata["blend"] = blend
    if activate_with is not None:
        registry = registry_on(settings, activate_with)
        metadata["parent_version"] = registry.active()
    version = trained.save_to(store, metadata)
    if activate_with is not None:
        event = registry.activate(version, "cli:train", reason)
        kafka = kafka_connection(settings)
        if kafka is not None:
            publisher = ModelUpdatePublisher(kafka, settings.topics.model_updates)
            try:
                publisher.publish(from_registry_event(event))
            finally:
                publisher.close()
    return version, metadata


def run_train(settings: Settings, options: TrainOptions) -> int:
    """The ``train`` command."""
    connection = redis_connection(settings)
    if options.activate and connection is None:
        raise TrainingDataError("activating a model needs REDIS_URL (or pass --no-activate)")
    if options.from_file:
        frame, source = load_outcomes_file(options.from_file), f"file:{options.from_file}"
    else:
        frame = outcomes_from_topic(settings, options.max_rows)
        source = f"topic:{settings.topics.outcomes}"
    if options.max_rows:
        frame = frame.sort_values("ts", kind="stable").tail(options.max_rows)
    client = (
        blocking_redis_client(settings, connection)
        if options.activate and connection is not None
        else None
    )
    version, metadata = train_and_store(settings, frame, source, client)
    metrics = metadata["validation_metrics"]
    state = "active" if options.activate else "stored (not active)"
    print(
        f"model {version} {state}: {sum(metadata['rows'].values())} rows, "
        f"validation log loss {metrics['log_loss']:.4f}, AUC {metrics['roc_auc']:.4f}, "
        f"accuracy {metrics['accuracy']:.4f}"
    )
    return 0
