"""``drift-alerts`` and drift-driven ``retrain-requests`` messages, built deterministically.

Ids and timestamps come from the outcome that triggered them (never the wall clock), so
re-processing the same outcomes after a crash builds byte-identical messages with the same ids.
"""

from __future__ import annotations

from typing import Any

from models.drift.alerts import AlertEvent
from models.drift.monitor import RetrainNeed
from streams.messages import DriftAlertMessage, RetrainRequestMessage

ALERTS = "drift-alerts"
RETRAIN = "retrain-requests"


def alert_message(event: AlertEvent, key: str, model_version: str | None, ts: int) -> dict:
    """A ``drift-alerts`` message for an alert or recovery of ``key``."""
    return {
        "schema_version": DriftAlertMessage.VERSION,
        "alert_id": f"{event.episode}-{event.event}",
        "event": event.event,
        "ts": ts,
        "key": key,
        "kind": event.kind,
        "source": event.source,
        "detector": event.detector,
        "statistic": event.statistic,
        "threshold": event.threshold,
        "window": event.window,
        "model_version": model_version,
        "severity": event.severity,
        "action": event.action,
        "episode": event.episode,
        "at_outcome": event.at_outcome,
        "details": event.details,
    }


def drift_retrain_message(need: RetrainNeed, key: str, ts: int) -> dict:
    """A ``retrain-requests`` message asked for by a drift episode."""
    return {
        "schema_version": RetrainRequestMessage.VERSION,
        "request_id": f"{need.episode}-retrain",
        "requested_by": "drift-detector",
        "reason": need.reason,
        "ts": ts,
        "window_outcomes": need.window_outcomes,
        "window_days": None,
        "force": False,
    }


def outbox_entry(topic: str, message_id: str, key: str, value: dict[str, Any]) -> dict:
    """An outbox entry: where it goes, its id (to check whether it was published), the message."""
    return {"topic": topic, "id": message_id, "key": key, "value": value, "verify": False}
