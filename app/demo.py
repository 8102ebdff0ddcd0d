"""``streamlearn demo``: the whole product on embedded infrastructure, ending with a summary.

1. start the embedded broker and Redis (or use the configured ones, with private topic names);
2. train a batch model on simulated history (momentum regime) and activate it;
3. start a worker and a retrainer; stream outcomes and signal requests at a fixed rate, with a
   regime flip (momentum -> mean reversion) half way, and show live prequential metrics;
4. the worker's drift monitor sees the batch model's error jump and publishes a concept alert;
   2,000 outcomes later it requests a retrain; the retrainer trains on the newest outcomes, the
   gate compares the challenger with the stale model, and it is promoted;
5. stop and print per-phase accuracy / log loss of online vs batch vs blend.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from app.backtest import MODES, backtest, registry_timeline, report, topic_history
from app.browser import BrowserError, HeadlessChromium, chromium_binary
from app.composition import active_version, blocking_redis_client, claimed_partitions, contract_spec
from app.dashboard.history import Totals
from app.embedded import Endpoints, free_port, infrastructure
from app.status import read_status
from app.train import train_and_store
from app.worker import worker_environment
from config import Settings
from models.market import MarketSimulator
from models.metrics import SOURCES
from models.notifications import alert_subject
from streams.producer import MessageProducer
from streams.reader import TopicReader
from streams.topics import TopicNames, ensure_topics_for


class DemoError(RuntimeError):
    """The demo could not run to the end."""


@dataclass(frozen=True)
class DemoOptions:
    """Length, pace and seed of the live stream, and the training history size."""

    seconds: float = 60.0
    rate: int = 1500
    seed: int = 7
    history: int = 20_000
    progress_every_s: float = 2.0
    screenshot: Path | None = None


def stamped(requests: list[dict]) -> list[dict]:
    """Requests stamped with the wall clock, as a trading system sends them (the simulator's
    clock is market time; the worker's request -> signal latency is measured from ``ts``)."""
    now = time.time_ns() // 1_000_000
    return [{**request, "ts": now} for request in requests]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "  -  " if value is None else f"{value:.{digits}f}"


def demo_settings(
    settings: Settings, store: Path, run_id: str, web_port: int, dashboard_port: int
) -> Settings:
    """Private topics, namespace, group, store and ports for one demo run."""
    prefix = f"demo-{run_id}-"
    return settings.with_overrides(
        topics={
            "outcomes": prefix + settings.topics.outcomes,
            "requests": prefix + settings.topics.requests,
            "signals": prefix + settings.topics.signals,
            "model_updates": prefix + settings.topics.model_updates,
            "retrain_requests": prefix + settings.topics.retrain_requests,
            "drift_alerts": prefix + settings.topics.drift_alerts,
        },
        redis={"namespace": f"{settings.redis.namespace}-demo-{run_id}"},
        kafka={"consumer_group": f"{settings.kafka.consumer_group}-demo-{run_id}"},
        batch={"store": str(store), "poll_interval_s": 0.5},
        retrain={"window_outcomes": 8_000, "cooldown_s": 0.0, "bootstrap_resamples": 500},
        web={"enabled": True, "port": web_port},
        dashboard={"host": "127.0.0.1", "port": dashboard_port, "interval_s": 1.0},
    )


class DemoRun:
    """One run of the demo against running infrastructure."""

    def __init__(self, settings: Settings, endpoints: Endpoints, options: DemoOptions) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.options = options
        self.names = TopicNames.from_settings(settings)
        live = int(options.seconds * options.rate)
        self.flip_at = options.history + live // 2
        self.live_outcomes = live
        self.sim = MarketSimulator(seed=options.seed, change_points=[self.flip_at])
        self.signal_statuses: Counter[str] = Counter()
        self.alerts: TopicReader | None = None
        self.lag = 0

    def snapshot(self) -> Totals:
        """Current cumulative metrics of the worker, from Redis (and its lag, in ``lag``)."""
        status = read_status(self.settings, self.endpoints.kafka, self.endpoints.redis)
        self.lag = sum(int(row["lag"] or 0) for row in status.partitions.values())
        return Totals.summed(Totals.of_summary(summary) for summary in status.keys.values())

    def train_initial_model(self) -> str:
        """Train on ``history`` outcomes of the first regime and activate the model."""
        frame = self.sim.frame(self.options.history)
        client = blocking_redis_client(self.settings, self.endpoints.redis)
        try:
            version, metadata = train_and_store(
                self.settings, frame, "simulator", client, reason="demo initial", verbose=False
            )
        finally:
            client.close()
        metrics = metadata["validation_metrics"]
        print(
            f"batch model {version}: trained on {self.options.history:,} momentum-regime "
            f"outcomes, validation accuracy {metrics['accuracy']:.3f}, log loss "
            f"{metrics['log_loss']:.3f}"
        )
        return version

    def wait_until_ready(self, worker: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
        """Wait until the worker has claimed every input partition."""
        deadline = time.monotonic() + timeout_s
        while len(claimed_partitions(self.settings, self.endpoints.redis)) < (
            self.settings.topics.partitions
        ):
            if worker.poll() is not None:
                raise DemoError(f"worker exited early with code {worker.returncode}")
            if time.monotonic() > deadline:
                raise DemoError("worker did not join the consumer group in time")
            time.sleep(0.2)

    def count_signals(self, reader: TopicReader) -> None:
        """Consume whatever signals arrived and tally their statuses."""
        for record in reader.poll(timeout_ms=0):
            self.signal_statuses[orjson.loads(record.value)["status"]] += 1

    def stream(self, producer: MessageProducer, reader: TopicReader) -> dict[str, Totals]:
        """Produce the live stream with progress lines; returns snapshots at the milestones.

        Milestones: ``flip`` (exact: production pauses until the worker caught up), ``promoted``
        (when the retrained model became active, to within a checkpoint interval) and ``end``.
        """
        per_tick = max(1, self.options.rate // 10)
        produced = 0
        started = time.monotonic()
        last_print, last_totals, last_signals = started, self.snapshot(), 0
        milestones: dict[str, Totals] = {}
        initial_model = self.active_version()
        while produced < self.live_outcomes:
            to_flip = self.flip_at - (self.options.history + produced)
            batch = min(
                per_tick, self.live_outcomes - produced, to_flip if to_flip > 0 else per_tick
            )
            producer.send_outcomes(self.sim.outcomes(batch))
            producer.send_requests(stamped(self.sim.requests(batch)))
            produced += batch
            index = self.options.history + produced
            if "flip" not in milestones and index == self.flip_at:
                producer.flush()
                paused = time.monotonic()
                milestones["flip"] = self.wait_for_updates(produced, reader)
                started += time.monotonic() - paused  # keep the pace after the pause
                print("--- regime flip: momentum -> mean reversion (batch model is now stale) ---")
            self.count_signals(reader)
            self.show_alerts()
            now = time.monotonic()
            if now - last_print >= self.options.progress_every_s:
                totals = self.snapshot()
                signals = sum(self.signal_statuses.values())
                self.print_progress(
                    now - started, totals, last_totals, signals - last_signals, now - last_print
                )
                last_print, last_totals, last_signals = now, totals, signals
            if "promoted" not in milestones and "flip" in milestones:
                active = self.active_version()
                if active != initial_model:
                    milestones["promoted"] = self.snapshot()
                    print(f"--- retrainer promoted {active}: the blend uses it from now on ---")
            target = started + produced / self.options.rate
            time.sleep(max(0.0, target - time.monotonic()))
        producer.flush()
        milestones["end"] = self.wait_for_updates(produced, reader)
        milestones.setdefault("flip", milestones["end"])
        return milestones

    def active_version(self) -> str | None:
        """The registry's active batch version."""
        return active_version(self.settings, self.endpoints.redis)

    def show_alerts(self) -> None:
        """Print drift alerts and recoveries as the worker publishes them."""
        if self.alerts is None:
            return
        for record in self.alerts.poll(timeout_ms=0):
            alert = orjson.loads(record.value)
            what = alert_subject(alert)
            action = (
                "; a retrain will be requested" if alert["action"] == "retrain_scheduled" else ""
            )
            print(
                f"--- drift {alert['event']}: {what} (statistic {alert['statistic']:.3f}, "
                f"threshold {alert['threshold']:.3f}){action} ---",
                flush=True,
            )

    def wait_for_updates(
        self, expected: int, reader: TopicReader, timeout_s: float = 30.0
    ) -> Totals:
        """Wait until the worker has learned (and checkpointed) ``expected`` live outcomes."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.count_signals(reader)
            totals = self.snapshot()
            if totals.updates >= expected or time.monotonic() > deadline:
                return totals
            time.sleep(0.2)

    def print_progress(
        self, elapsed: float, totals: Totals, previous: Totals, new_signals: int, dt: float
    ) -> None:
        """One progress line: rates and the last interval's prequential metrics."""
        window = totals.minus(previous)
        accs = " ".join(_fmt(window.accuracy(s)) for s in SOURCES)
        losses = " ".join(_fmt(window.log_loss(s)) for s in SOURCES)
        print(
            f"[{elapsed:5.1f}s] outcomes {totals.updates:>7,} ({window.updates / dt:>6,.0f}/s)  "
            f"signals {sum(self.signal_statuses.values()):>7,} ({new_signals / dt:>6,.0f}/s)  "
            f"lag {self.lag:>5}  acc online/batch/blend {accs}  logloss {losses}",
            flush=True,
        )

    def summary(self, milestones: dict[str, Totals], elapsed: float) -> str:
        """The final table."""
        flip, end = milestones["flip"], milestones["end"]
        promoted = milestones.get("promoted")
        phases = [("momentum (before flip)", flip)]
        if promoted is not None:
            phases += [
                ("flip, stale batch model", promoted.minus(flip)),
                ("after the retrain", end.minus(promoted)),
            ]
        else:
            phases.append(("mean reversion (after)", end.minus(flip)))
        phases.append(("whole live stream", end))
        lines = [
            "",
            f"{'phase':<24} {'outcomes':>9}  {'accuracy online':>15} {'batch':>6} {'blend':>6}"
            f"  {'log loss online':>15} {'batch':>6} {'blend':>6}",
        ]
        for name, totals in phases:
            lines.append(
                f"{name:<24} {totals.updates:>9,}  {_fmt(totals.accuracy('online')):>15} "
                f"{_fmt(totals.accuracy('batch')):>6} {_fmt(totals.accuracy('blend')):>6}  "
                f"{_fmt(totals.log_loss('online')):>15} {_fmt(totals.log_loss('batch')):>6} "
                f"{_fmt(totals.log_loss('blend')):>6}"
            )
        signals = sum(self.signal_statuses.values())
        statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(self.signal_statuses.items()))
        lines += [
            "",
            f"signals: {signals:,} of {self.live_outcomes:,} requests ({statuses}); "
            f"learned {end.updates:,} outcomes; live run {elapsed:.0f}s "
            f"({end.updates / elapsed:,.0f} outcomes/s, {signals / elapsed:,.0f} signals/s)",
        ]
        return "\n".join(lines)


def _start(
    command: str, settings: Settings, endpoints: Endpoints, log_path: Path
) -> subprocess.Popen:
    with open(log_path, "wb") as worker_log:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", command],
            env=worker_environment(settings, endpoints),
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )


def _stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def replay_comparison(run: DemoRun, milestones: dict[str, Totals], live_s: float) -> str:
    """The live stream replayed in process in every blend mode (``streamlearn backtest``),
    per phase, next to what the live worker measured."""
    history = topic_history(run.settings, run.endpoints.kafka)
    result = backtest(run.settings, history, registry_timeline(run.settings), MODES)
    promoted = milestones.get("promoted")
    starts = {
        0: "momentum (before flip)",
        milestones["flip"].updates: (
            "mean reversion (after)" if promoted is None else "flip, stale batch model"
        ),
    }
    if promoted is not None:
        starts[promoted.updates] = "after the retrain"
    doc = report(result, threshold=0.55, cuts=list(starts))
    columns = ["online", "batch", *(f"blend {mode}" for mode in MODES)]
    per_mode = max(result.seconds.values())
    lines = [
        "",
        f"the same {doc['outcomes']:,} outcomes replayed in process (streamlearn backtest, "
        f"{per_mode:.1f} s per blend mode, {live_s / per_mode:.0f}x faster than live):",
        f"{'phase':<24} {'accuracy online':>15} {'batch':>6} {'fixed':>6} {'optim.':>6} "
        f"{'stack.':>6}  {'log loss online':>15} {'batch':>6} {'fixed':>6} {'optim.':>6} "
        f"{'stack.':>6}",
    ]
    for segment in doc["segments"]:
        whole = segment["from"] == 0 and segment["to"] == doc["outcomes"]
        name = "whole live stream" if whole else starts[segment["from"]]
        metrics = segment["metrics"]
        accs = [_fmt(metrics[c]["accuracy"]) for c in columns]
        losses = [_fmt(metrics[c]["log_loss"]) for c in columns]
        lines.append(
            f"{name:<24} {accs[0]:>15} "
            + " ".join(f"{a:>6}" for a in accs[1:])
            + f"  {losses[0]:>15} "
            + " ".join(f"{x:>6}" for x in losses[1:])
        )
    trading = doc["trading"]
    lines.append(
        "trades at score >= 0.55, mean R / profit factor: "
        + ", ".join(
            f"{mode} {_fmt(trading[f'blend {mode}']['mean_r'])} / "
            f"{_fmt(trading[f'blend {mode}']['profit_factor'], 2)}"
            for mode in MODES
        )
    )
    return "\n".join(lines)


def dashboard_screenshot(url: str, path: Path) -> str:
    """A headless Chromium's screenshot of the dashboard at ``url``, once it drew some
    history and events; what happened, in one line."""
    binary = chromium_binary()
    if binary is None:
        return "no Chromium found: no dashboard screenshot (apt-get install chromium)"
    with HeadlessChromium(binary) as browser:
        browser.open(url)
        browser.wait_for(
            "window.streamlearn && streamlearn.points > 10 && streamlearn.events > 0",
            30,
            "its history and events",
        )
        browser.screenshot(path)
    return f"dashboard screenshot: {path}"


def _live(run: DemoRun, web_port: int) -> None:
    """Stream, wait for the last signals, print the summary and the blend-mode comparison."""
    dashboard = f"http://127.0.0.1:{run.settings.dashboard.port}/"
    print(
        f"worker ready; dashboard: {dashboard} (live), worker status: "
        f"http://127.0.0.1:{web_port}/status, Prometheus metrics: "
        f"http://127.0.0.1:{web_port}/metrics"
    )
    producer = MessageProducer(run.endpoints.kafka, run.names, contract_spec(run.settings))
    try:
        with (
            TopicReader(run.endpoints.kafka, run.names.signals) as reader,
            TopicReader(run.endpoints.kafka, run.names.drift_alerts) as alerts,
        ):
            reader.seek()
            alerts.seek()
            run.alerts = alerts
            started = time.monotonic()
            milestones = run.stream(producer, reader)
            elapsed = time.monotonic() - started
            deadline = time.monotonic() + 15
            while (
                sum(run.signal_statuses.values()) < run.live_outcomes
                and time.monotonic() < deadline
            ):
                run.count_signals(reader)
                time.sleep(0.1)
    finally:
        producer.close()
    if run.options.screenshot is not None:
        try:
            print(dashboard_screenshot(dashboard, run.options.screenshot), flush=True)
        except BrowserError as exc:
            print(f"no dashboard screenshot: {exc}", flush=True)
    print(run.summary(milestones, elapsed))
    print(replay_comparison(run, milestones, elapsed), flush=True)


def run_demo(settings: Settings, options: DemoOptions) -> int:
    """The ``demo`` command."""
    run_id = uuid.uuid4().hex[:6]
    with (
        tempfile.TemporaryDirectory(prefix="streamlearn-demo-") as workdir,
        infrastructure(settings) as endpoints,
    ):
        print(f"broker {endpoints.kafka_bootstrap}, redis {endpoints.redis.display}")
        web_port = free_port()
        run_settings = demo_settings(
            settings, Path(workdir) / "models", run_id, web_port, free_port()
        )
        run = DemoRun(run_settings, endpoints, options)
        ensure_topics_for(run_settings, endpoints.kafka)
        run.train_initial_model()
        log_path = Path(workdir) / "worker.log"
        worker = _start("worker", run_settings, endpoints, log_path)
        retrainer = _start("retrainer", run_settings, endpoints, Path(workdir) / "retrainer.log")
        dashboard = _start("dashboard", run_settings, endpoints, Path(workdir) / "dashboard.log")
        try:
            print("starting a worker (joins the consumer group) and the retrainer...", flush=True)
            run.wait_until_ready(worker)
            _live(run, web_port)
        except BaseException:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            print("worker log tail:\n  " + "\n  ".join(tail), file=sys.stderr)
            raise
        finally:
            _stop(dashboard)
            _stop(retrainer)
            _stop(worker)
    return 0
