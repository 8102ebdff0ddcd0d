"""Scoring throughput and latency: request produced -> signal consumed, side by side.

For each system -- the streamlearn worker, the naive per-event Faust agent and the
hand-written aiokafka batch loop (``bench.baselines``) -- the same load generator first leaves
a backlog of 60,000 requests that the system drains when it starts (the maximum throughput,
taken between its first and last signal, with the generator idle), then offers 1,000, 5,000 and
10,000 requests/s for a few seconds each, paced by the producer, stopping at the first load a
system cannot keep up with; a consumer records when each signal arrives. Reported: p50 / p99 /
p99.9 latency per load, burst throughput, the latency floor (generator + broker, no system) and
the compute limit (the same work in a bare loop with no Kafka). Everything runs on this
machine's 2 cores, load generator and broker included, so ratios matter more than absolute
numbers. Writes
``bench/results/scoring_latency.json`` and ``bench/results/scoring_latency.png``.

    python -m bench.scoring_latency [--seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
from river import compose, linear_model, preprocessing

from app.composition import contract_spec
from app.worker import worker_environment
from bench.harness import (
    RESULTS,
    Process,
    activate_batch_model,
    create_topics,
    infrastructure,
    isolated_settings,
    markdown,
    save,
    start_worker,
    wait_until,
)
from models.market import MarketSimulator
from models.store import MODEL_FILE
from streams.producer import MessageProducer
from streams.reader import TopicReader

LOADS = (1_000, 5_000, 10_000)
BURST = 60_000
KEYS = [f"SYM{i:03d}" for i in range(100)]


@dataclass
class Run:
    """Send and receive times of one load level."""

    sent: dict[str, float] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)

    def latencies_ms(self) -> np.ndarray:
        return np.array(
            [1000 * (self.received[r] - t) for r, t in self.sent.items() if r in self.received]
        )


class LoadGenerator:
    """Offers requests and times their signals, on one asyncio loop in its own thread.

    aiokafka on both sides (kafka-python's consumer alone added ~25 ms p50 / ~60 ms p99 here);
    the producer is paced in 2 ms ticks; arrival times are taken when a fetch returns.
    """

    def __init__(self, bootstrap: str, requests_topic: str, signals_topic: str, partitions: int):
        self._bootstrap = bootstrap
        self._requests = requests_topic
        self._signals = signals_topic
        self._partitions = partitions
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.run_: Run | None = None
        self._call(self._start())

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _start(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

        self._producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, linger_ms=1)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="latest",
            fetch_max_wait_ms=5,
        )
        await self._consumer.start()
        self._consumer.assign([TopicPartition(self._signals, p) for p in range(self._partitions)])
        with TopicReader(self._bootstrap, self._signals) as reader:  # fetch-based ends, not
            ends = reader.high_watermarks()  # ListOffsets (wrong on the embedded broker)
        for partition, end in ends.items():
            self._consumer.seek(TopicPartition(self._signals, partition), end)
        self._receiving = asyncio.ensure_future(self._receive())

    async def _receive(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            run = self.run_
            if run is None:
                continue
            for records in batches.values():
                for record in records:
                    run.received[orjson.loads(record.value)["request_id"]] = now

    def offer(self, sim: MarketSimulator, rate: float | None, count: int, run: Run) -> float:
        """Send ``count`` requests at ``rate`` per second (None: as fast as possible)."""
        self.run_ = run
        return self._call(self._offer(sim, rate, count, run))

    async def _offer(self, sim: MarketSimulator, rate: float | None, count: int, run: Run) -> float:
        tick = 0.002
        per_tick = max(1, round((rate or 1e9) * tick))
        started = time.perf_counter()
        sent = 0
        while sent < count:
            batch = sim.requests(min(per_tick, count - sent))
            now = time.perf_counter()
            for request in batch:
                run.sent[request["request_id"]] = now
                await self._producer.send(
                    self._requests, key=request["key"].encode(), value=orjson.dumps(request)
                )
            sent += len(batch)
            if rate is not None:
                delay = started + sent / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
        await self._producer.flush()
        return time.perf_counter() - started

    def close(self) -> None:
        async def stop() -> None:
            self._receiving.cancel()
            await self._consumer.stop()
            await self._producer.stop()

        self._call(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def measure_system(name: str, start, settings, endpoints, seconds: float) -> dict:
    """The burst (maximum throughput), then the paced loads, for one system."""
    names = create_topics(settings, endpoints)
    sim = MarketSimulator(seed=9, keys=KEYS)
    load = LoadGenerator(
        endpoints.kafka_bootstrap, names.requests, names.signals, settings.topics.partitions
    )
    # The burst is a backlog produced before the system starts, so the load generator does not
    # share the CPU with it while it drains; its rate is taken between the first and the last
    # signal. It also warms the system up for the paced loads.
    burst = Run()
    results: dict = {"system": name, "loads": {}}
    system = None
    try:
        load.offer(sim, None, BURST, burst)
        system = start(settings)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: len(burst.received) >= BURST, 300, "burst signals", 0.05)
        arrivals = sorted(burst.received.values())
        drained = len(arrivals) > 1 and arrivals[-1] > arrivals[0]
        results["burst"] = {
            "requests": BURST,
            "received": len(arrivals),
            "signals_per_s": (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if drained else 0.0,
        }
        # Paced loads from light to heavy; a level that leaves a backlog ends the series (later
        # levels would only measure the backlog).
        for rate in LOADS:
            run = Run()
            load.offer(sim, rate, int(rate * seconds), run)
            drained = True
            try:
                wait_until(lambda r=run: len(r.received) >= len(r.sent), 60, "signals", 0.05)
            except TimeoutError:
                drained = False
            latencies = run.latencies_ms()
            results["loads"][rate] = {
                "offered": len(run.sent),
                "received": len(run.received),
                "kept_up": drained,
                "p50_ms": float(np.percentile(latencies, 50)),
                "p99_ms": float(np.percentile(latencies, 99)),
                "p999_ms": float(np.percentile(latencies, 99.9)),
                "latencies_ms": np.sort(latencies)[:: max(1, len(latencies) // 2000)].tolist(),
            }
            if not drained:
                break
        results["rss_mb"] = system.rss_mb()
    finally:
        load.close()
        if system is not None:
            system.stop()
    return results


def floor(settings, endpoints) -> dict:
    """Latency with nothing in between: requests produced straight onto the signals topic."""
    names = create_topics(settings, endpoints)
    load = LoadGenerator(
        endpoints.kafka_bootstrap, names.signals, names.signals, settings.topics.partitions
    )
    sim = MarketSimulator(seed=11, keys=KEYS)
    result = {"system": "floor: load generator + broker only", "loads": {}}
    try:
        for rate in LOADS:
            run = Run()
            load.offer(sim, rate, int(rate * 3), run)
            with contextlib.suppress(TimeoutError):
                wait_until(lambda r=run: len(r.received) >= len(r.sent), 30, "floor", 0.05)
            latencies = run.latencies_ms()
            result["loads"][rate] = {
                "offered": len(run.sent),
                "received": len(run.received),
                "p50_ms": float(np.percentile(latencies, 50)),
                "p99_ms": float(np.percentile(latencies, 99)),
                "p999_ms": float(np.percentile(latencies, 99.9)),
                "latencies_ms": np.sort(latencies)[:: max(1, len(latencies) // 2000)].tolist(),
            }
    finally:
        load.close()
    return result


def bare_compute(settings, model_path: Path) -> float:
    """The scorer's work with no Kafka: decode, River predict, batched XGBoost, encode."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(str(model_path))
    booster.set_param({"nthread": 1})
    features = list(settings.model.features)
    sim = MarketSimulator(seed=10, keys=KEYS)
    raw = [orjson.dumps(r) for r in sim.requests(BURST)]
    models: dict[str, compose.Pipeline] = {}
    started = time.perf_counter()
    for start in range(0, len(raw), 500):
        messages = [orjson.loads(v) for v in raw[start : start + 500]]
        matrix = np.array([[m["features"][f] for f in features] for m in messages])
        for message, pb in zip(messages, booster.inplace_predict(matrix).tolist(), strict=True):
            model = models.get(message["key"])
            if model is None:
                model = models[message["key"]] = (
                    preprocessing.StandardScaler() | linear_model.LogisticRegression()
                )
            p_online = model.predict_proba_one(message["features"])[True]
            orjson.dumps({"request_id": message["request_id"], "score": 0.8 * pb + 0.2 * p_online})
    return len(raw) / (time.perf_counter() - started)


def plot(systems: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(LOADS), figsize=(5 * len(LOADS), 4), sharey=True)
    colors = {system["system"]: f"C{i}" for i, system in enumerate(systems)}
    for axis, rate in zip(axes, LOADS, strict=True):
        for system in systems:
            if rate not in system["loads"]:
                continue
            values = np.asarray(system["loads"][rate]["latencies_ms"])
            if len(values):
                axis.plot(
                    values,
                    np.linspace(0, 1, len(values)),
                    label=system["system"],
                    color=colors[system["system"]],
                )
        axis.set_xscale("log")
        axis.set_title(f"{rate:,} requests/s offered")
        axis.set_xlabel("request -> signal latency (ms)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("fraction of requests")
    handles = {}
    for axis in axes:
        for line in axis.get_lines():
            handles.setdefault(line.get_label(), line)
    axes[0].legend(handles.values(), handles.keys(), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each load level")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="measure only systems whose name contains one of these words (quick checks)",
    )
    args = parser.parse_args()
    with infrastructure() as endpoints, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        store = workdir / "store"
        base = isolated_settings(
            store,
            topics={"partitions": 4},
            model={"key_field": "key"},
            processing={"max_wait_ms": 2},
        )
        version = activate_batch_model(base, endpoints.redis_url)
        model_path = store / version / MODEL_FILE

        def ours(settings, engine="faust"):
            # 5,000 outcomes first, so every key's online model scores too.
            producer = MessageProducer(
                endpoints.kafka_bootstrap,
                create_topics(settings, endpoints),
                contract_spec(settings),
            )
            producer.send_outcomes(MarketSimulator(seed=7, keys=KEYS).outcomes(5_000))
            producer.close()
            settings = settings.with_overrides(processing={"engine": engine})
            return start_worker(settings, endpoints, workdir / f"worker-{engine}.log")

        def baseline(role):
            def start(settings):
                env = {
                    **worker_environment(settings, endpoints),
                    "BENCH_MODEL_PATH": str(model_path),
                }
                return Process(["-m", "bench.baselines", role], env, workdir / f"{role}.log")

            return start

        systems = []
        measured_floor = floor(
            base.with_overrides(topics={"signals": f"{base.topics.signals}-floor"}), endpoints
        )
        for name, start in (
            ("streamlearn worker, aiokafka engine (default)", lambda st: ours(st, "aiokafka")),
            ("streamlearn worker, faust engine", ours),
            ("hand-written aiokafka loop", baseline("aiokafka-scorer")),
            ("naive Faust agent", baseline("naive-scorer")),
        ):
            if args.only and not any(word in name for word in args.only):
                continue
            settings = base.with_overrides(
                redis={"namespace": base.redis.namespace},
                topics={
                    f: f"{getattr(base.topics, f)}-{len(systems)}"
                    for f in (
                        "outcomes",
                        "requests",
                        "signals",
                        "model_updates",
                        "retrain_requests",
                        "drift_alerts",
                    )
                },
                kafka={"consumer_group": f"{base.kafka.consumer_group}-{len(systems)}"},
            )
            systems.append(measure_system(name, start, settings, endpoints, args.seconds))
            print(f"measured {name}", flush=True)
        compute = bare_compute(base, model_path)
    save(
        "scoring_latency",
        {"systems": systems, "floor": measured_floor, "bare_compute_per_s": compute},
    )
    rows = []
    for system in [*systems, measured_floor]:
        for rate in LOADS:
            load = system["loads"].get(rate)
            if load is None:
                rows.append(
                    {
                        "system": system["system"],
                        "offered": f"{rate:,}/s",
                        "received": "not run: fell behind at a lower load",
                    }
                )
                continue
            kept_up = "" if load.get("kept_up", True) else " (fell behind)"
            rows.append(
                {
                    "system": system["system"],
                    "offered": f"{rate:,}/s",
                    "received": f"{load['received']:,}/{load['offered']:,}{kept_up}",
                    "p50": load["p50_ms"],
                    "p99": load["p99_ms"],
                    "p999": load["p999_ms"],
                }
            )
    print(
        markdown(
            rows,
            [
                ("system", "system"),
                ("offered", "offered"),
                ("received", "signals"),
                ("p50", "p50 ms"),
                ("p99", "p99 ms"),
                ("p999", "p99.9 ms"),
            ],
        )
    )
    by_name = {system["system"]: system for system in systems}

    def burst(name: str) -> float:
        system = by_name.get(name)
        return system["burst"]["signals_per_s"] if system else float("nan")

    loop_rate = burst("hand-written aiokafka loop")
    naive_rate = burst("naive Faust agent")
    burst_rows = [
        {
            "system": s["system"],
            "rate": s["burst"]["signals_per_s"],
            "vs_aiokafka": s["burst"]["signals_per_s"] / loop_rate,
            "rss": s["rss_mb"],
        }
        for s in systems
    ]
    burst_rows.append(
        {
            "system": "bare compute loop (no Kafka)",
            "rate": compute,
            "vs_aiokafka": compute / loop_rate,
        }
    )
    print()
    print(
        markdown(
            burst_rows,
            [
                ("system", "system"),
                ("rate", "max signals/s (burst)"),
                ("vs_aiokafka", "vs aiokafka loop"),
                ("rss", "RSS MiB"),
            ],
        )
    )
    loop_p99 = by_name.get("hand-written aiokafka loop", {}).get("loads", {}).get(5000, {})
    ratios = {}
    for system in [s for s in systems if s["system"].startswith("streamlearn")]:
        rate = system["burst"]["signals_per_s"]
        p99 = system["loads"].get(5000, {}).get("p99_ms", float("nan"))
        p99_ratio = p99 / loop_p99.get("p99_ms", float("nan"))
        ratios[system["system"]] = {
            "throughput_vs_aiokafka_loop": rate / loop_rate,
            "p99_at_5k_vs_aiokafka_loop": p99_ratio,
            "meets_throughput_target": rate / loop_rate >= 0.85,
            "meets_p99_target": p99_ratio <= 1.1,
        }
        print(
            f"{system['system']}: {rate / loop_rate:.0%} of the aiokafka loop's throughput "
            f"(target 85%), {rate / naive_rate:.1f}x the naive agent; p99 at 5,000/s "
            f"{p99:.1f} ms = {p99_ratio:.2f}x the loop's (target <= 1.1x)"
        )
    png = RESULTS / "scoring_latency.png"
    plot([*systems, measured_floor], png)
    path = save(
        "scoring_latency",
        {
            "systems": systems,
            "floor": measured_floor,
            "bare_compute_per_s": compute,
            "ratios": ratios,
        },
    )
    print(f"saved {path} and {png}")


if __name__ == "__main__":
    main()
