"""Notices for people: drift alerts, recoveries and model updates, filtered and formatted.

Pure functions over the ``drift-alerts`` and ``model-updates`` messages (docs/messages.md);
``streamlearn notify`` (app/notify.py) reads the topics and does the HTTP. A notice has a
stable ``notice_id`` (the alert's ``alert_id``, the update's ``update_id``) that deliveries
are deduplicated on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson

#: Severity order: a webhook's ``min_severity`` lets through its level and the ones after it.
SEVERITIES: Final = ("info", "warning", "critical")

#: How much a model update matters to the people on call.
UPDATE_SEVERITY: Final = {
    "activated": "info",
    "rolled_back": "warning",
    "staged": "warning",  # awaiting approval: someone has to act
    "rejected": "info",
    "failed": "critical",
}


@dataclass(frozen=True)
class Notice:
    """One thing to tell people, from one message."""

    notice_id: str
    kind: str  # concept | data | prediction | label | model
    event: str  # alert | recovery | activated | rolled_back | staged | rejected | failed
    severity: str
    title: str
    text: str
    at_ms: int | None
    message: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The generic JSON POST body: the notice and the message it came from."""
        return {
            "notice_id": self.notice_id,
            "kind": self.kind,
            "event": self.event,
            "severity": self.severity,
            "title": self.title,
            "text": self.text,
            "at": self.at_ms,
            "message": dict(self.message),
        }

    def as_slack(self) -> dict[str, Any]:
        """A Slack incoming-webhook body (``text`` for notifications, blocks for the rest)."""
        icon = {"critical": ":red_circle:", "warning": ":warning:"}.get(self.severity, ":info:")
        return {
            "text": f"{icon} {self.title}",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{self.title}*"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": self.text}},
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": f"{self.severity} · {self.kind}/{self.event} · "
                            f"{_when(self.at_ms)} · id {self.notice_id}",
                        }
                    ],
                },
            ],
        }


@dataclass(frozen=True)
class NoticeFilter:
    """What one webhook wants: a minimum severity, some kinds, some events (empty = all)."""

    min_severity: str = "info"
    kinds: Sequence[str] = ()
    events: Sequence[str] = ()

    def wants(self, notice: Notice) -> bool:
        """Whether the notice passes this filter.

        >>> alert = Notice("a1", "concept", "alert", "warning", "t", "x", 0)
        >>> NoticeFilter("critical").wants(alert), NoticeFilter(kinds=("concept",)).wants(alert)
        (False, True)
        """
        return (
            _rank(notice.severity) >= _rank(self.min_severity)
            and (not self.kinds or notice.kind in self.kinds)
            and (not self.events or notice.event in self.events)
        )


def alert_subject(alert: Mapping[str, Any]) -> str:
    """What drifted, as people read it: ``concept/batch``, ``data``.

    >>> alert_subject({"kind": "concept", "source": "batch"}), alert_subject({"kind": "data"})
    ('concept/batch', 'data')
    """
    return str(alert["kind"]) + (f"/{alert['source']}" if alert.get("source") else "")


def alert_relation(alert: Mapping[str, Any]) -> str:
    """How the statistic stands to the threshold: ``>=`` for an alert, ``<=`` for a recovery."""
    return ">=" if alert["event"] == "alert" else "<="


class NoticeError(ValueError):
    """A message that cannot become a notice (not an alert or an update)."""


def alert_notice(alert: Mapping[str, Any]) -> Notice:
    """The notice of a ``drift-alerts`` message (an alert or a recovery)."""
    try:
        notice_id, kind, event = str(alert["alert_id"]), str(alert["kind"]), str(alert["event"])
    except KeyError as exc:
        raise NoticeError(f"drift alert without {exc.args[0]!r}") from None
    what = alert_subject(alert)
    key = alert.get("key")
    severity = str(alert.get("severity") or "warning")
    if event == "recovery":
        severity = "info"
    title = (
        f"Drift {'alert' if event == 'alert' else 'recovered'}: {what} on key {key}"
        if event in ("alert", "recovery")
        else f"Drift {event}: {what} on key {key}"
    )
    text = (
        f"{alert.get('detector', 'detector')}: statistic {_number(alert.get('statistic'))} "
        f"{alert_relation(alert)} threshold {_number(alert.get('threshold'))} at outcome "
        f"{alert.get('at_outcome')}; model {alert.get('model_version')}; action "
        f"{alert.get('action')}"
    )
    drifted = (alert.get("details") or {}).get("drifted")
    if drifted:
        text += "; columns " + ", ".join(sorted(drifted))
    return Notice(notice_id, kind, event, severity, title, text, alert.get("ts"), alert)


def notice_of(value: bytes | None, is_alert: bool, fallback_id: str) -> Notice:
    """The notice of one record of ``drift-alerts`` (``is_alert``) or ``model-updates``;
    ``fallback_id`` names an update without an ``update_id``. NoticeError when the record is
    not such a message (not JSON, not an object, fields missing)."""
    try:
        message = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise NoticeError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise NoticeError("not a JSON object")
    return alert_notice(message) if is_alert else update_notice(message, fallback_id)


def record_id(topic: str, partition: int, offset: int) -> str:
    """Where a record is (``topic:partition:offset``): the id of a notice without its own.

    >>> record_id("model-updates", 0, 7)
    'model-updates:0:7'
    """
    return f"{topic}:{partition}:{offset}"


def update_notice(update: Mapping[str, Any], fallback_id: str) -> Notice:
    """The notice of a ``model-updates`` message; ``fallback_id`` names it when it carries no
    ``update_id`` (messages written before that field existed)."""
    event = update.get("event")
    if not isinstance(event, str):
        raise NoticeError("model update without 'event'")
    version = update.get("version")
    titles = {
        "activated": f"Model {version} is active",
        "rolled_back": f"Rolled back to model {version}",
        "staged": f"Model {version} is staged, awaiting approval (streamlearn models promote)",
        "rejected": f"Challenger {version} rejected by the gate",
        "failed": "Retrain failed",
    }
    text = str(update.get("reason") or "")
    if update.get("previous"):
        text += f" (previous: {update['previous']})"
    return Notice(
        str(update.get("update_id") or fallback_id),
        "model",
        event,
        UPDATE_SEVERITY.get(event, "info"),
        titles.get(event, f"Model update: {event} {version}"),
        text or "-",
        update.get("at"),
        update,
    )


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else str(value)


def _when(at_ms: int | None) -> str:
    if not isinstance(at_ms, int):
        return "-"
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
