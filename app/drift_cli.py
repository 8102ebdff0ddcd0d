"""``streamlearn alerts tail`` and ``streamlearn drift report``: drift for the people on call."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson

from app.composition import (
    drift_config,
    kafka_connection,
    model_store,
    online_config,
    redis_connection,
)
from app.redis_connection import RedisConnection
from app.status import learner_state
from config import Settings
from models.codec import decode_key_model
from models.drift.monitor import DriftMonitor, ModelReference
from models.notifications import alert_relation, alert_subject
from models.store import ModelStore, ModelStoreError
from streams.reader import TopicReader


class DriftCommandError(RuntimeError):
    """A drift command cannot run (missing configuration)."""


def format_alert(alert: dict[str, Any]) -> str:
    """One readable line per alert or recovery."""
    when = datetime.fromtimestamp(alert["ts"] / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    what, relation = alert_subject(alert), alert_relation(alert)
    line = (
        f"{when} {alert['event'].upper():<8} {what:<14} key={alert['key']} "
        f"severity={alert['severity']} {alert['statistic']:.4f} {relation} "
        f"{alert['threshold']:.4f} [{alert['detector']}] model={alert['model_version']} "
        f"action={alert['action']} id={alert['alert_id']}"
    )
    drifted = (alert.get("details") or {}).get("drifted")
    if drifted:
        line += " columns=" + ",".join(sorted(drifted))
    return line


def tail_alerts(settings: Settings, last: int, follow: bool, as_json: bool) -> int:
    """Print the last ``last`` alerts, then (with ``follow``) new ones until Ctrl-C."""
    kafka = kafka_connection(settings)
    if kafka is None:
        raise DriftCommandError("alerts are on Kafka: set KAFKA_BOOTSTRAP_SERVERS")
    with TopicReader(kafka, settings.topics.drift_alerts) as reader:
        ends = reader.high_watermarks()
        reader.seek({p: max(0, end - last) for p, end in ends.items()})
        for record in reader.read_to_end(ends):
            _show(record.value, as_json)
        while follow:
            for record in reader.poll(timeout_ms=500):  # waits up to 500 ms for new alerts
                _show(record.value, as_json)
    return 0


def _show(value: bytes, as_json: bool) -> None:
    if as_json:
        print(value.decode(), flush=True)
        return
    try:
        print(format_alert(orjson.loads(value)), flush=True)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        print(f"(unreadable alert) {value[:200]!r}", flush=True)


def _monitors(settings: Settings, redis: RedisConnection) -> dict[str, DriftMonitor]:
    drift = drift_config(settings)
    if drift is None:
        raise DriftCommandError("drift detection is off (drift.enabled = false)")
    snapshots = asyncio.run(learner_state(settings, redis))
    store = model_store(settings)
    references: dict[str, ModelReference | None] = {}
    found: dict[str, DriftMonitor] = {}
    for snapshot in snapshots.values():
        for key, blob in snapshot.states.items():
            monitor = decode_key_model(blob, online_config(settings), drift).drift
            if monitor is None:
                continue
            version = monitor.model_version
            if version is not None and version not in references:
                references[version] = _reference(store, version)
            reference = references.get(version) if version else None
            if reference is not None:
                # Checkpoints keep no reference bins: they are the model version's metadata.
                monitor.attach(reference)
            found[key] = monitor
    return found


def _reference(store: ModelStore, version: str) -> ModelReference | None:
    """A version's drift reference, or None if the version is no longer in the store."""
    try:
        return ModelReference.from_metadata(version, store.metadata(version))
    except (ModelStoreError, OSError, ValueError):
        return None


def drift_report(monitor: DriftMonitor) -> dict[str, Any]:
    """Plain numbers of one key's monitors."""
    concept = {
        source: {
            "recent_error": stream.recent,
            "baseline_error": stream.baseline,
            "detector_window": stream.window,
            "episode": monitor.concept.episodes[source].as_dict()
            if source in monitor.concept.episodes
            else None,
        }
        for source, stream in monitor.concept.streams.items()
    }
    return {
        "outcomes": monitor.n,
        "model_version": monitor.model_version,
        "concept": concept,
        "data": {"psi": monitor.data.statistics(), "episode": monitor.data.episode.as_dict()},
        "prediction": {
            "psi": monitor.prediction.statistics(),
            "episode": monitor.prediction.episode.as_dict(),
        },
        "label": {
            "win_rate": monitor.label.rate,
            "reference_win_rate": monitor.label.reference_rate,
            "episode": monitor.label.episode.as_dict(),
        },
    }


def report(settings: Settings, as_json: bool, last_alerts: int = 5) -> int:
    """The ``drift report`` command."""
    redis = redis_connection(settings)
    if redis is None:
        raise DriftCommandError("drift state is in Redis: set REDIS_URL")
    reports = {key: drift_report(m) for key, m in sorted(_monitors(settings, redis).items())}
    recent: dict[str, list[dict]] = {}
    kafka = kafka_connection(settings)
    if kafka is not None:
        with TopicReader(kafka, settings.topics.drift_alerts) as reader:
            ends = reader.high_watermarks()
            reader.seek({p: max(0, end - 1000) for p, end in ends.items()})
            for record in reader.read_to_end(ends):
                alert = orjson.loads(record.value)
                recent.setdefault(alert.get("key"), []).append(alert)
    if as_json:
        data = {
            k: {**r, "last_alerts": recent.get(k, [])[-last_alerts:]} for k, r in reports.items()
        }
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return 0
    for key, data in reports.items():
        print(f"key {key}: {data['outcomes']:,} outcomes, model {data['model_version']}")
        for source, row in data["concept"].items():
            episode = row["episode"]
            state = "-" if episode is None else episode["state"].upper()
            print(
                f"  concept/{source:<6} recent error {_num(row['recent_error'])}  baseline "
                f"{_num(row['baseline_error'])}  window {row['detector_window']:.0f}  {state}"
            )
        for kind in ("data", "prediction"):
            psi = data[kind]["psi"]
            shown = "  ".join(f"{name} {value:.3f}" for name, value in sorted(psi.items()))
            print(
                f"  {kind:<10} PSI {shown or '(no reference yet)'}  "
                f"{data[kind]['episode']['state'].upper()}"
            )
        label = data["label"]
        print(
            f"  label      win rate {_num(label['win_rate'])} vs reference "
            f"{_num(label['reference_win_rate'])}  {label['episode']['state'].upper()}"
        )
        for alert in recent.get(key, [])[-last_alerts:]:
            print("  " + format_alert(alert))
    if not reports:
        print("no model keys with drift state yet")
    return 0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
