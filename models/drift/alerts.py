"""Alert events and the episode state machine that gives one alert per shift."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AlertEvent:
    """An alert (a drift started) or a recovery (it cleared), before it is addressed to a key."""

    event: str  # "alert" | "recovery"
    kind: str  # concept | data | label | prediction
    source: str | None
    detector: str
    statistic: float
    threshold: float
    window: float
    severity: str  # warning | critical | info
    action: str
    at_outcome: int
    episode: str
    details: dict[str, Any] = field(default_factory=dict)


def episode_id(key: str, kind: str, source: str | None, started_at: int) -> str:
    """Deterministic id of a drift episode: replaying the same outcomes yields the same id."""
    raw = f"{key}|{kind}|{source or '-'}|{started_at}".encode()
    return hashlib.sha256(raw).hexdigest()[:20]


@dataclass
class Episode:
    """Hysteresis and cooldown: ok -> alert (once) -> ok (recovery), then quiet for a while."""

    state: str = "ok"
    started_at: int = -1
    cooldown_until: int = 0
    retrain_due_at: int | None = None
    retrain_requested: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        """Whether an alert is open (not yet recovered)."""
        return self.state == "alert"

    def can_open(self, n: int) -> bool:
        """Whether a new alert may start at outcome ``n``."""
        return self.state == "ok" and n >= self.cooldown_until

    def start(self, n: int, details: dict[str, Any]) -> None:
        """An alert opens at outcome ``n``."""
        self.state, self.started_at, self.details = "alert", n, dict(details)
        self.retrain_due_at, self.retrain_requested = None, False

    def close(self, n: int, cooldown: int) -> None:
        """The condition cleared at outcome ``n``; no new alert for ``cooldown`` outcomes."""
        self.state, self.cooldown_until = "ok", n + cooldown
        self.retrain_due_at = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the codec."""
        return {
            "state": self.state,
            "started_at": self.started_at,
            "cooldown_until": self.cooldown_until,
            "retrain_due_at": self.retrain_due_at,
            "retrain_requested": self.retrain_requested,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        """Inverse of :meth:`as_dict`."""
        if data.get("state") not in ("ok", "alert"):
            raise ValueError(f"bad episode state {data.get('state')!r}")
        return cls(
            state=data["state"],
            started_at=int(data["started_at"]),
            cooldown_until=int(data["cooldown_until"]),
            retrain_due_at=None if data["retrain_due_at"] is None else int(data["retrain_due_at"]),
            retrain_requested=bool(data["retrain_requested"]),
            details=dict(data.get("details") or {}),
        )
