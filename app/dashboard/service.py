"""``streamlearn dashboard``: sample the deployment every interval, serve the live page.

One loop reads a :class:`~app.dashboard.history.Sample` every ``dashboard.interval_s`` into
the bounded :class:`~app.dashboard.history.History`; the HTTP threads answer from it. A
failed read (Redis or the broker away) is shown on the page with its reason, the connections
are reopened on the next try, and the history is kept: the dashboard outlives outages of
what it watches.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from app.dashboard.history import ALL, History, Sample
from app.dashboard.sampler import DeploymentSampler, Event
from app.dashboard.server import DashboardServer
from app.dashboard.timeline import Timeline
from app.embedded import Endpoints
from config import Settings

log = logging.getLogger(__name__)


class Sampler(Protocol):
    """What the dashboard reads from (:class:`DeploymentSampler`; a twin in unit tests)."""

    registry_view: dict[str, Any]

    def sample(self) -> Sample:
        """The deployment now."""

    def new_events(self) -> list[Event]:
        """Alerts and model updates read since the last call."""

    def close(self) -> None:
        """Release connections (the next sample reopens them)."""


class Dashboard:
    """The dashboard's state and its sampling loop (see the module doc)."""

    def __init__(self, settings: Settings, sampler: Sampler) -> None:
        options = settings.dashboard
        self.settings = settings
        self.interval_s = options.interval_s
        self.history = History(options.history_points, options.top_keys)
        self.timeline = Timeline(options.events)
        self.sampler = sampler
        self.error: str | None = None
        self.sampled_at: float | None = None
        self.sample_seconds: float | None = None
        self._lock = threading.Lock()

    def sample_once(self) -> None:
        """Read one sample into the history (or record why it could not be read)."""
        started = time.monotonic()
        try:
            sample = self.sampler.sample()
        except Exception as exc:
            with self._lock:
                self._record(self.sampler.new_events())
            reason = _one_line(exc)
            if reason != self.error:
                log.warning("dashboard: cannot read the deployment: %s", reason)
            self.error = reason
            self.sampler.close()
            return
        with self._lock:
            self._record(self.sampler.new_events())
            self.history.add(sample)
            self.error, self.sampled_at = None, sample.at
            self.sample_seconds = time.monotonic() - started

    def _record(self, events: list[Event]) -> None:
        """Events into the timeline (the caller holds the lock)."""
        for event in events:
            self.timeline.add(event.notice, event.at_ms)

    def run(self, stop: threading.Event) -> None:
        """Sample every interval until ``stop`` is set."""
        try:
            while not stop.is_set():
                started = time.monotonic()
                self.sample_once()
                stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
        finally:
            self.sampler.close()

    def healthy(self) -> bool:
        """Whether the last successful sample is at most three intervals old."""
        at = self.sampled_at
        return at is not None and time.time() - at <= 3 * self.interval_s + 5

    def view(self, key: str) -> dict[str, Any]:
        """What the page shows, with the series of ``key`` (``all``: every key together)."""
        with self._lock:
            keys = self.history.keys()
            chosen = key if key in keys else ALL
            return {
                "namespace": self.settings.redis.namespace,
                "interval_s": self.interval_s,
                "sampled_at": self.sampled_at,
                "sample_seconds": self.sample_seconds,
                "error": self.error,
                "key": chosen,
                "keys": keys,
                "series": self.history.series(chosen),
                "deployment": self.history.deployment(),
                "totals": self.history.totals(),
                "lag": dict(self.history.latest.lag) if self.history.latest else {},
                "open_episodes": self.timeline.open_episodes(),
                "events": self.timeline.events(),
                "registry": self.sampler.registry_view,
            }


def run_dashboard(settings: Settings, endpoints: Endpoints, announce: bool = True) -> int:
    """The ``dashboard`` command: serve until SIGTERM or Ctrl-C."""
    import signal

    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    options = settings.dashboard
    sampler = DeploymentSampler(settings, endpoints, options.events, options.signals_per_partition)
    dashboard = Dashboard(settings, sampler)
    token = options.token.get_secret_value() if options.token else None
    server = DashboardServer(options.host, options.port, dashboard.view, dashboard.healthy, token)
    if announce:
        print(f"dashboard: http://{options.host}:{server.port}/", flush=True)
    try:
        dashboard.run(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        server.close()
    return 0


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
