"""``streamlearn retrainer``: acts on retrain requests in its own process, one retrain at a time.

A burst of requests yields one retrain: everything queued when the retrainer looks is served by
one run, and requests arriving within ``retrain.cooldown_s`` of a finished retrain are dropped
(logged) unless they say ``force``. Only one retrainer acts at a time (a leader lease, in Redis);
a second one waits as a standby. Its ports come from the composition root.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import pandas as pd

from app.composition import (
    RetrainerPorts,
    blend_training,
    contract_spec,
    gate_config,
    model_key_column,
    retrainer_ports,
    run_tracker,
    train_config,
    trigger_config,
    tuning_config,
)
from app.embedded import Endpoints
from app.retrain_triggers import TriggerRunner
from app.retrainer_metrics import RetrainerMetrics
from config import Settings
from models.batch import BatchModel, BatchModelError, load_batch_model
from models.coordination import LeaderLease, LeaseLostError
from models.gate import GateDecision
from models.registry import Fence, FencedError
from models.retrain import Challenge, challenge
from models.tracking import TrackedRun
from models.training import load_outcomes_file
from models.triggers import Trigger
from models.tuning import trial_line
from streams.contracts import RetrainRequest
from streams.failpoints import failpoint
from streams.model_updates import ModelUpdatePublisher, from_registry_event, model_update
from streams.retrain_requests import RequestBatch, RetrainRequestQueue
from streams.windows import DAY_MS, read_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainReport:
    """What one retrain did."""

    version: str
    action: str  # activated | staged | rejected
    decision: GateDecision
    rows: int
    seconds: float


class Retrainer:
    """Reads the training window, trains a challenger, gates it, stores and announces it."""

    def __init__(
        self,
        settings: Settings,
        endpoints: Endpoints,
        out: TextIO = sys.stderr,
        ports: RetrainerPorts | None = None,
        metrics: RetrainerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self._out = out
        self.ports = ports or retrainer_ports(settings, endpoints.redis)
        self.registry = self.ports.registry
        self.store = self.registry.store
        self.state = self.ports.state
        self.publisher = ModelUpdatePublisher(endpoints.kafka, settings.topics.model_updates)
        self.failures = 0
        self.tracker = run_tracker(settings)
        self.metrics = metrics or RetrainerMetrics()
        self.triggers = TriggerRunner(
            trigger_config(settings),
            endpoints.kafka,
            settings.topics.outcomes,
            self.state,
            settings.retrain.trigger_check_s,
            on_fired=self._fired,
        )

    def _fired(self, trigger: Trigger) -> None:
        self.metrics.triggers.labels(trigger.requested_by).inc()
        self.say(f"{trigger.requested_by} trigger: {trigger.reason}")

    def say(self, text: str) -> None:
        """A progress line for the operator."""
        print(f"retrainer: {text}", file=self._out, flush=True)

    def retrain(
        self,
        requests: Sequence[RetrainRequest],
        by: str = "retrainer",
        fence: Fence | None = None,
    ) -> RetrainReport:
        """One full retrain for ``requests`` (they share it).

        ``fence`` is the leader's fencing token: the registry refuses the promotion if another
        retrainer took the lead meanwhile (:class:`~models.registry.FencedError`).
        """
        started = time.monotonic()
        self.triggers.note_retrain()
        window_outcomes, window_days = self._window_of(requests)
        frame = self._read(window_outcomes, window_days)
        self.say(f"{len(frame):,} outcomes in the window; training")
        champion = self._champion()
        reason = "; ".join(sorted({r.reason for r in requests})) or "retrain"
        result = challenge(
            frame,
            self.settings.model.features,
            champion,
            train_config(self.settings),
            gate_config(self.settings),
            source=self._source_name(),
            reason=reason,
            progress=lambda r, loss: self.say(f"round {r:4d} validation log loss {loss:.4f}"),
            blend=blend_training(self.settings),
            key_column=model_key_column(self.settings, frame.columns),
            tuning=tuning_config(self.settings),
            on_trial=lambda n, loss, state, best: self.say(trial_line(n, loss, state, best)),
            warm_start=self.settings.retrain.warm_start,
        )
        metadata = {
            **result.metadata,
            "requests": [
                {"request_id": r.request_id, "requested_by": r.requested_by, "reason": r.reason}
                for r in requests
            ],
        }
        run = self._track(metadata, result)
        version = result.trained.save_to(self.store, metadata)
        failpoint("retrainer-before-promotion")
        decision = result.decision
        self.say(decision.reason)
        details = {"gate": decision.as_dict(), "parent": metadata["parent_version"]}
        if not decision.promote:
            action = "rejected"
            self.publisher.publish(
                model_update("rejected", version, by, decision.reason, **details)
            )
        elif self.settings.retrain.promotion_mode == "auto":
            action = "activated"
            event = self.registry.activate(version, by, decision.reason, fence)
            failpoint("retrainer-after-promotion")
            self.publisher.publish(from_registry_event(event, **details))
        else:
            action = "staged"
            event = self.registry.stage(version, by, decision.reason, fence)
            self.publisher.publish(from_registry_event(event, **details))
        self.registry.check_fence(fence)
        if run is not None:
            self._link(run, version, action)
        pruned = self.registry.prune(self.settings.retrain.keep_versions)
        if pruned:
            self.say(f"retention removed {len(pruned)} old versions")
        finished = time.time()
        self.state.mark_finished(finished)
        seconds = time.monotonic() - started
        self.metrics.retrains.labels(action).inc()
        self.metrics.seconds.observe(seconds)
        self.metrics.window_rows.set(len(frame))
        self.metrics.last_finished.set(finished)
        self.say(f"version {version} {action} ({seconds:.1f}s)")
        return RetrainReport(version, action, decision, len(frame), seconds)

    def handle(
        self,
        batch: RequestBatch,
        queue: RetrainRequestQueue,
        fence: Fence | None = None,
    ) -> RetrainReport | None:
        """Act on what the queue returned: nothing, a cooldown skip, or one retrain.

        A retrain that fails (too few rows, bad data, any error) is announced as ``failed`` on
        ``model-updates`` with the reason, its requests are committed (a request that cannot
        be served must not be retried forever), and :attr:`failures` grows so the caller backs
        off. Only a lost leadership (:class:`FencedError`) leaves the requests uncommitted, for
        the new leader.
        """
        report = None
        if batch.requests:
            cooling = self._cooldown_left()
            if cooling > 0 and not any(r.force for r in batch.requests):
                for request in batch.requests:
                    log.warning(
                        "retrain request dropped: cooldown",
                        extra={
                            "request_id": request.request_id,
                            "reason": request.reason,
                            "cooldown_left_s": round(cooling, 1),
                        },
                    )
                self.say(f"{len(batch.requests)} request(s) dropped: cooldown {cooling:.0f}s left")
            else:
                self.say(f"{len(batch.requests)} request(s): one retrain")
                try:
                    report = self.retrain(batch.requests, fence=fence)
                    self.failures = 0
                except FencedError:
                    raise
                except Exception as exc:
                    self.failures += 1
                    self.metrics.retrains.labels("failed").inc()
                    self._announce_failure(batch.requests, exc)
        queue.commit(batch.next_offset)
        return report

    def _announce_failure(self, requests: Sequence[RetrainRequest], exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        log.error("retrain failed", extra={"error": reason, "failures": self.failures})
        self.say(f"retrain failed: {reason}")
        try:
            self.publisher.publish(
                model_update(
                    "failed",
                    None,
                    "retrainer",
                    reason,
                    requests=[r.request_id for r in requests],
                )
            )
        except Exception as publish_error:  # the broker is down too: the log says it all
            log.error("failed event not published", extra={"error": repr(publish_error)})

    def run(self, stop: threading.Event) -> None:
        """Serve retrain requests until ``stop`` is set; never exits on an error.

        Leadership is a lease (a Redis lock) kept alive by a thread; each time this process becomes
        leader it takes a new fencing token, which every registry change it makes carries.
        Errors (Redis or the broker unreachable, a failed retrain) are logged and retried with
        backoff; a lost lock sends it back to waiting as a standby.
        """
        while not stop.is_set():
            try:
                self._lead(stop)
            except Exception as exc:
                delay = min(30.0, 2.0 ** min(self.failures, 5))
                self.failures += 1
                log.error("retrainer error; retrying", extra={"error": repr(exc), "in_s": delay})
                stop.wait(delay)

    def _lead(self, stop: threading.Event) -> None:
        lease_s = self.settings.retrain.leader_lease_s
        lock = self.state.leader_lease(lease_s)
        self.say("waiting to be the active retrainer")
        while not lock.acquire(blocking_timeout=1):
            if stop.is_set():
                return
        fence = self.registry.backend.take_fence()
        self.metrics.leader.set(1)
        lost = threading.Event()
        keepalive = threading.Thread(
            target=_keep_lock, args=(lock, stop, lost, lease_s / 4), daemon=True
        )
        keepalive.start()
        queue = RetrainRequestQueue(
            self.endpoints.kafka,
            self.settings.topics.retrain_requests,
            self.settings.topics.dead_letter(self.settings.topics.retrain_requests),
            self.state,
        )
        self.say(f"ready; reading {self.settings.topics.retrain_requests} (token {fence.token})")
        try:
            while not stop.is_set() and not lost.is_set():
                self.triggers.check(queue.enqueue)
                self.handle(queue.poll(), queue, fence)
                backoff = min(60.0, 2.0 ** min(self.failures, 6)) if self.failures else 0.0
                stop.wait(self.settings.retrain.poll_interval_s + backoff)
        except FencedError as exc:
            self.say(f"no longer the leader: {exc}")
        finally:
            self.metrics.leader.set(0)
            queue.close()
            self.triggers.close()
            with contextlib.suppress(Exception):
                lock.release()

    def _cooldown_left(self) -> float:
        finished = self.state.last_finished()
        if finished is None:
            return 0.0
        return finished + self.settings.retrain.cooldown_s - time.time()

    def _window_of(self, requests: Sequence[RetrainRequest]) -> tuple[int | None, float | None]:
        outcomes = [r.window_outcomes for r in requests if r.window_outcomes]
        days = [r.window_days for r in requests if r.window_days]
        if outcomes or days:
            return (max(outcomes) if outcomes else None, max(days) if days else None)
        return self.settings.retrain.window_outcomes, self.settings.retrain.window_days

    def _source_name(self) -> str:
        source = self.settings.retrain.source_file
        return f"file:{source}" if source else f"topic:{self.settings.topics.outcomes}"

    def _read(self, last_outcomes: int | None, last_days: float | None) -> pd.DataFrame:
        now_ms = time.time_ns() // 1_000_000
        source = self.settings.retrain.source_file
        self.say(
            f"reading window (last {last_outcomes or 'all'} outcomes"
            f"{f', last {last_days} days' if last_days else ''}) from {self._source_name()}"
        )
        if source is None:
            return read_window(
                self.endpoints.kafka,
                self.settings.topics.outcomes,
                contract_spec(self.settings),
                last_outcomes=last_outcomes,
                last_days=last_days,
                now_ms=now_ms,
                progress=lambda n: self.say(f"{n:,} records read"),
            )
        frame = load_outcomes_file(source).sort_values("ts", kind="stable")
        if last_days is not None:
            frame = frame[frame["ts"] >= now_ms - int(last_days * DAY_MS)]
        if last_outcomes is not None:
            frame = frame.tail(last_outcomes)
        return frame.reset_index(drop=True)

    def _track(self, metadata: dict[str, Any], result: Challenge) -> TrackedRun | None:
        """Record the retrain as a tracking run and link it in ``metadata["tracking"]``; a
        tracking server that fails never fails the retrain (the metadata says why)."""
        if self.tracker is None:
            return None
        trained = result.trained
        try:
            run = self.tracker.record(metadata, trained.model_bytes(), trained.family.model_file)
        except Exception as exc:  # any client or server error: the model matters more
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            self.say(f"tracking failed: {reason}")
            metadata["tracking"] = {"system": "mlflow", "error": reason}
            return None
        metadata["tracking"] = run.as_metadata()
        self.say(f"tracked as MLflow run {run.run_id}")
        return run

    def _link(self, run: TrackedRun, version: str, action: str) -> None:
        assert self.tracker is not None
        try:
            self.tracker.link(run.run_id, version, action)
        except Exception as exc:  # the run exists; only its version tag is missing
            self.say(f"tracking could not tag run {run.run_id}: {type(exc).__name__}")

    def _champion(self) -> BatchModel | None:
        active = self.registry.active()
        if active is None:
            return None
        try:
            return load_batch_model(self.store, active, self.settings.model.features)
        except BatchModelError as exc:
            self.say(f"active version {active} cannot be loaded ({exc}); gating against base rate")
            return None


def _keep_lock(
    lock: LeaderLease, stop: threading.Event, lost: threading.Event, every_s: float
) -> None:
    while not stop.wait(every_s) and not lost.is_set():
        try:
            lock.reacquire()
        except LeaseLostError:
            log.error("lost the retrainer lock")
            lost.set()
        except OSError as exc:  # an outage: try again; the fence protects the registry
            log.warning("retrainer lock not renewed", extra={"error": repr(exc)})


def run_retrainer(settings: Settings, endpoints: Endpoints) -> int:
    """The ``retrainer`` command: serve requests until SIGTERM or Ctrl-C."""
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    retrainer = Retrainer(settings, endpoints)
    if settings.retrain.metrics_port:
        retrainer.metrics.serve(settings.web.host, settings.retrain.metrics_port)
    try:
        retrainer.run(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        retrainer.publisher.close()
        retrainer.ports.close()
    return 0
