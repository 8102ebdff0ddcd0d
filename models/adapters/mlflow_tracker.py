"""MLflow as the retrains' tracking server (the ``tracking`` extra, ``tracking.mlflow_uri``).

Uses ``MlflowClient`` (explicit run ids, no global active run), so a retrainer thread never
touches another's run. The model artifact is the version's own file in its native format plus
the metadata as JSON, never a pickle.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from models.extras import optional_module
from models.tracking import TrackedRun, run_metrics, run_params, run_tags

#: MLflow's most entries per log_batch call (metrics; params are capped at 100).
BATCH_METRICS = 1000
BATCH_PARAMS = 100


def mlflow_module() -> ModuleType:
    """MLflow's client package, or one line naming the extra that installs it."""
    module = optional_module("mlflow.tracking", "tracking.mlflow_uri", "tracking")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return module


def default_artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts when not configured: next to a SQLite
    database (``<its folder>/mlruns``; MLflow's own default is ``./mlruns`` in whatever folder
    the retrainer runs in); None (the server's or the file store's choice) otherwise."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return (Path(uri[len(prefix) :]).resolve().parent / "mlruns").as_uri()


class MlflowTracker:
    """Records each retrain as one MLflow run of ``experiment`` at ``uri``."""

    def __init__(self, uri: str, experiment: str, artifact_location: str | None = None) -> None:
        self.uri = uri
        self.experiment = experiment
        self.artifact_location = artifact_location or default_artifact_location(uri)
        self._client = mlflow_module().MlflowClient(tracking_uri=uri)
        self._entities = importlib.import_module("mlflow.entities")
        self._experiment_id: str | None = None

    def _experiment(self) -> str:
        if self._experiment_id is None:
            found = self._client.get_experiment_by_name(self.experiment)
            self._experiment_id = (
                found.experiment_id
                if found
                else self._client.create_experiment(
                    self.experiment, artifact_location=self.artifact_location
                )
            )
        return self._experiment_id

    def record(self, metadata: Mapping[str, Any], model: bytes, model_file: str) -> TrackedRun:
        """One finished run: parameters, metrics, tags, the model and its metadata."""
        run = self._client.create_run(
            self._experiment(),
            tags=run_tags(metadata),
            run_name=f"retrain {metadata.get('family', '')}".strip(),
        )
        run_id = run.info.run_id
        try:
            self._log(run_id, metadata, model, model_file)
        except Exception:
            self._client.set_terminated(run_id, status="FAILED")
            raise
        self._client.set_terminated(run_id)
        return TrackedRun(run_id=run_id, experiment=self.experiment, uri=self.uri)

    def link(self, run_id: str, version: str, action: str) -> None:
        """Tag the run with its version and the retrainer's action (activated/staged/...)."""
        self._client.set_tag(run_id, "streamlearn.version", version)
        self._client.set_tag(run_id, "streamlearn.action", action)

    def _log(self, run_id: str, metadata: Mapping[str, Any], model: bytes, file: str) -> None:
        entities = self._entities
        now = int(time.time() * 1000)
        params = [entities.Param(k, v) for k, v in run_params(metadata).items()]
        metrics = [entities.Metric(m.name, m.value, now, m.step) for m in run_metrics(metadata)]
        for i in range(0, len(params), BATCH_PARAMS):
            self._client.log_batch(run_id, params=params[i : i + BATCH_PARAMS])
        for i in range(0, len(metrics), BATCH_METRICS):
            self._client.log_batch(run_id, metrics=metrics[i : i + BATCH_METRICS])
        with tempfile.TemporaryDirectory(prefix="streamlearn-run-") as folder:
            path = Path(folder) / "model"
            path.mkdir()
            (path / file).write_bytes(model)
            (path / "metadata.json").write_bytes(
                orjson.dumps(metadata, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
            )
            self._client.log_artifacts(run_id, str(path), artifact_path="model")
