"""The dashboard's event list: drift alerts, recoveries and model updates, newest first.

Messages are read from ``drift-alerts`` and ``model-updates`` and described by the same
notices ``streamlearn notify`` sends (:mod:`models.notifications`), so the page and a Slack
channel say the same thing. A message published twice (the workers' outbox may) is shown
once; the list and the memory of ids are bounded.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Any

from models.notifications import NoticeError, alert_notice, update_notice


class Timeline:
    """The last ``limit`` events, and which drift episodes are open now."""

    def __init__(self, limit: int) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=limit)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._memory = 4 * limit
        self._open: dict[tuple[str, str, str], str] = {}

    def add_alert(self, alert: Mapping[str, Any], at_ms: int) -> None:
        """A ``drift-alerts`` message published at ``at_ms`` (epoch milliseconds)."""
        try:
            notice = alert_notice(alert)
        except (NoticeError, KeyError, TypeError, ValueError):
            return  # not an alert this version can read; the topic's consumers say why
        if not self._first(notice.notice_id):
            return
        episode = (str(alert.get("key")), notice.kind, str(alert.get("source")))
        if notice.event == "alert":
            self._open[episode] = str(alert.get("episode"))
        else:
            self._open.pop(episode, None)
        self._events.append(
            {
                "at": at_ms,
                "type": "drift",
                "kind": notice.kind,
                "event": notice.event,
                "severity": notice.severity,
                "key": alert.get("key"),
                "source": alert.get("source"),
                "version": alert.get("model_version"),
                "title": notice.title,
                "text": notice.text,
            }
        )

    def add_update(self, update: Mapping[str, Any], at_ms: int, fallback_id: str) -> None:
        """A ``model-updates`` message published at ``at_ms``; ``fallback_id`` names one
        without an ``update_id``."""
        try:
            notice = update_notice(update, fallback_id)
        except NoticeError:
            return
        if not self._first(notice.notice_id):
            return
        self._events.append(
            {
                "at": at_ms,
                "type": "model",
                "kind": "model",
                "event": notice.event,
                "severity": notice.severity,
                "key": None,
                "source": None,
                "version": update.get("version"),
                "title": notice.title,
                "text": notice.text,
            }
        )

    def _first(self, notice_id: str) -> bool:
        if notice_id in self._seen:
            return False
        self._seen[notice_id] = None
        if len(self._seen) > self._memory:
            self._seen.popitem(last=False)
        return True

    def events(self) -> list[dict[str, Any]]:
        """Every kept event, newest first."""
        return sorted(self._events, key=lambda e: e["at"], reverse=True)

    def open_episodes(self) -> dict[str, int]:
        """Drift episodes opened and not yet recovered, by kind (among the events read)."""
        counts: dict[str, int] = {}
        for _, kind, _ in self._open:
            counts[kind] = counts.get(kind, 0) + 1
        return counts
