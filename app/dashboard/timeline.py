"""The dashboard's event list: drift alerts, recoveries and model updates, newest first.

Messages of ``drift-alerts`` and ``model-updates`` arrive as the notices ``streamlearn notify``
sends (:func:`models.notifications.notice_of`), so the page and a Slack channel say the same
thing. A message published twice (the workers' outbox may) is shown
once; the list and the memory of ids are bounded.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from models.notifications import Notice


class Timeline:
    """The last ``limit`` events, and which drift episodes are open now."""

    def __init__(self, limit: int) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=limit)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._memory = 4 * limit
        self._open: dict[tuple[str, str, str], str] = {}

    def add(self, notice: Notice, at_ms: int) -> None:
        """A drift alert, recovery or model update published at ``at_ms`` (epoch ms)."""
        if not self._first(notice.notice_id):
            return
        message = notice.message
        drift = notice.kind != "model"
        if drift:
            episode = (str(message.get("key")), notice.kind, str(message.get("source")))
            if notice.event == "alert":
                self._open[episode] = str(message.get("episode"))
            else:
                self._open.pop(episode, None)
        self._events.append(
            {
                "at": at_ms,
                "type": "drift" if drift else "model",
                "kind": notice.kind,
                "event": notice.event,
                "severity": notice.severity,
                "key": message.get("key") if drift else None,
                "source": message.get("source") if drift else None,
                "version": message.get("model_version" if drift else "version"),
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
