"""``streamlearn backtest``: the worker's learner and blend over past outcomes, in process.

Outcomes come from a CSV/Parquet file or the ``trade-outcomes`` topic; they go through the
same ``OutcomeLearner`` a worker runs (see :mod:`streams.backtest`), once per blend mode asked
for, with in-memory state (no Redis is read or written) and the batch model that was active at
each outcome's time according to the registry journal on the model store (or one version, or
none). The report: prequential accuracy and log loss of the online, batch and blended scores
per segment and per key, the drift alerts that would have fired, and the trading metrics of
the trades each blend would have taken at a threshold.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from app.composition import kafka_connection, memory_engine, memory_ports, model_store
from config import Settings
from models.backtest import part_metrics, segment_bounds
from models.registry import ACTIVATING, Journal
from models.trading import trading_metrics
from models.training import TrainingDataError, load_outcomes_file
from streams.backtest import Replay, VersionTimeline, replay
from streams.contracts import encode_message
from streams.kafka_connection import KafkaConnection
from streams.reader import TopicReader
from streams.records import InputRecord

MODES = ("fixed", "optimized", "stacked")
PARTS = ("online", "batch")


class BacktestError(RuntimeError):
    """The backtest cannot run (no outcomes, unreadable input, unknown version)."""


@dataclass(frozen=True)
class History:
    """Outcome records in processing order, when each was processed (epoch ms), and where they
    came from."""

    records: list[InputRecord]
    times_ms: list[int]
    source: str

    @property
    def span_s(self) -> float:
        """Seconds from the first to the last outcome's time."""
        return (max(self.times_ms) - min(self.times_ms)) / 1000.0 if self.times_ms else 0.0


@dataclass(frozen=True)
class BacktestOptions:
    """What to replay and how to report it."""

    from_file: str | None = None
    from_topic: bool = False
    since_ms: int | None = None
    until_ms: int | None = None
    modes: tuple[str, ...] = ()
    batch_version: str | None = None
    no_batch: bool = False
    threshold: float = 0.55
    segments: tuple[int, ...] = ()
    keys_shown: int = 10
    json_path: str | None = None


@dataclass
class BacktestResult:
    """The replays of one history, one per blend mode, and how long they took."""

    history: History
    timeline: VersionTimeline
    replays: dict[str, Replay] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        """How many times faster than the history's own time span one replay ran (the slowest
        mode), or None without a span."""
        slowest = max(self.seconds.values(), default=0.0)
        return self.history.span_s / slowest if slowest > 0 and self.history.span_s else None


def parse_time(text: str) -> int:
    """Epoch milliseconds from an ISO-8601 time or a number of epoch milliseconds."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        raise BacktestError(f"{text!r} is neither epoch ms nor an ISO-8601 time") from None


# -- inputs ----------------------------------------------------------------------------------


def file_history(
    settings: Settings, path: str, since_ms: int | None, until_ms: int | None
) -> History:
    """Outcomes of a CSV/Parquet file (``ts``, ``label``, one column per feature; optional
    ``key``, ``outcome_id``, ``realized_rr``, and the ``model.key_field`` column when set),
    oldest first, each model key on the partition its CRC-32 picks (a key's results do not
    depend on which partition it is on)."""
    try:
        frame = load_outcomes_file(path)
    except TrainingDataError as exc:
        raise BacktestError(str(exc)) from None
    return frame_history(settings, frame, f"file:{path}", since_ms, until_ms)


def frame_history(
    settings: Settings,
    frame: pd.DataFrame,
    source: str,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> History:
    """Outcomes of a table (the columns of :func:`file_history`) as records to replay."""
    features = list(settings.model.features)
    key_field = settings.model.key_field  # the message field naming the model key, if any
    model_keys = [key_field] if key_field and key_field != "key" else []
    missing = [c for c in ("ts", "label", *features, *model_keys) if c not in frame.columns]
    if missing:
        raise BacktestError(f"{source} lacks column(s) {', '.join(missing)}")
    frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    if since_ms is not None:
        frame = frame[frame["ts"] >= since_ms]
    if until_ms is not None:
        frame = frame[frame["ts"] < until_ms]
    columns = frame.columns
    n = len(frame)
    times = frame["ts"].astype("int64").tolist()
    labels = frame["label"].astype(int).tolist()
    keys = frame["key"].astype(str).tolist() if "key" in columns else ["global"] * n
    ids = (
        frame["outcome_id"].astype(str).tolist()
        if "outcome_id" in columns
        else [f"row-{i}" for i in frame.index]
    )
    rr = frame["realized_rr"].astype(float).tolist() if "realized_rr" in columns else [None] * n
    named = {name: frame[name].astype(str).tolist() for name in model_keys}
    rows = frame[features].to_numpy(dtype=float).tolist()
    partitions = settings.topics.partitions
    next_offset: Counter[int] = Counter()
    records = []
    for i in range(n):
        realized = rr[i]
        message = {
            "outcome_id": ids[i],
            "key": keys[i],
            **{name: values[i] for name, values in named.items()},
            "ts": times[i],
            "features": dict(zip(features, rows[i], strict=True)),
            "label": labels[i],
            "realized_rr": None if realized is None or math.isnan(realized) else realized,
        }
        # Records are keyed by their model key (the contract), as producers key them.
        model_key = str(message[key_field]).encode() if key_field else b"global"
        partition = zlib.crc32(model_key) % partitions
        records.append(
            InputRecord(partition, next_offset[partition], model_key, encode_message(message))
        )
        next_offset[partition] += 1
    return History(records, times, source)


def topic_history(
    settings: Settings,
    kafka: KafkaConnection,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> History:
    """The ``trade-outcomes`` topic from its start to its end now, by record timestamp; the
    partitions merged by time, each in offset order (as a worker learns them)."""
    per_partition: dict[int, list[tuple[int, InputRecord]]] = {}
    with TopicReader(kafka, settings.topics.outcomes) as reader:
        ends = reader.high_watermarks()
        reader.seek({p: 0 for p in ends})
        for r in reader.read_to_end(ends):
            if (since_ms is not None and r.timestamp < since_ms) or (
                until_ms is not None and r.timestamp >= until_ms
            ):
                continue
            record = InputRecord(r.partition, r.offset, r.key, r.value)
            per_partition.setdefault(r.partition, []).append((r.timestamp, record))
    for rows in per_partition.values():
        rows.sort(key=lambda row: row[1].offset)
    # heapq.merge takes the head of each partition in turn: offset order within a partition
    # holds even where timestamps are not monotonic.
    merged = list(heapq.merge(*per_partition.values(), key=lambda row: row[0]))
    return History(
        [record for _, record in merged],
        [ts for ts, _ in merged],
        f"topic:{settings.topics.outcomes}",
    )


def registry_timeline(settings: Settings) -> VersionTimeline:
    """The active batch version over time, from the registry journal on the model store."""
    changes = []
    for event in Journal(model_store(settings)).events():
        if event.action in ACTIVATING:
            ms = int(datetime.fromisoformat(event.at).timestamp() * 1000)
            changes.append((ms, event.version))
    return VersionTimeline(tuple(changes))


# -- running ---------------------------------------------------------------------------------


def backtest(
    settings: Settings,
    history: History,
    timeline: VersionTimeline,
    modes: Sequence[str],
    progress: Callable[[str, int], None] | None = None,
) -> BacktestResult:
    """Replay ``history`` once per blend mode with ``settings`` (in-memory state).

    A mode is ``fixed``, ``optimized`` or ``stacked``, optionally with ``+configured`` or
    ``+fitted`` to set ``blend.start`` for that replay (else the settings' start).
    """
    if not history.records:
        raise BacktestError("no outcomes to replay")
    result = BacktestResult(history, timeline)
    for mode in modes:
        name, _, start = mode.partition("+")
        blend = {"mode": name, "start": start or settings.blend.start}
        # A replay waits for every batch-model load (a worker would score on meanwhile).
        run_settings = settings.with_overrides(blend=blend, batch={"load_wait_s": 3600.0})
        ports = memory_ports(run_settings)
        engine = memory_engine(run_settings, ports)
        use_version = partial(setattr, ports.pointer, "version")
        report = None if progress is None else partial(progress, mode)
        started = time.perf_counter()
        result.replays[mode] = asyncio.run(
            replay(engine, history.records, history.times_ms, timeline, use_version, report)
        )
        result.seconds[mode] = time.perf_counter() - started
    return result


# -- reporting -------------------------------------------------------------------------------


def report(result: BacktestResult, threshold: float, cuts: Sequence[int] = ()) -> dict[str, Any]:
    """The backtest as plain numbers (the JSON the CLI writes)."""
    modes = list(result.replays)
    first = result.replays[modes[0]].scored
    n = len(first)
    labels = first.labels()
    sources = {
        "online": first.part("online"),
        "batch": first.part("batch"),
        **{f"blend {mode}": replay.scored.part("blend") for mode, replay in result.replays.items()},
    }
    segments = []
    for start, end in segment_bounds(n, cuts):
        part = slice(start, end)
        segments.append(
            {
                "from": start,
                "to": end,
                "metrics": {
                    name: part_metrics(p[part], labels[part]).to_dict()
                    for name, p in sources.items()
                },
            }
        )
    # Each key's outcome indices from one sort (a mask per key costs outcomes x keys).
    names, inverse = np.unique(np.asarray(first.keys), return_inverse=True)
    counts = np.bincount(inverse)
    groups = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    by_key = {}
    for k in np.argsort(-counts, kind="stable"):  # most outcomes first
        rows = groups[k]
        by_key[str(names[k])] = {
            "n": int(counts[k]),
            "metrics": {
                name: part_metrics(p[rows], labels[rows]).to_dict() for name, p in sources.items()
            },
        }
    rr = np.asarray(first.realized_rr, dtype=float)
    trading = {"every trade": trading_metrics(np.ones(n), labels, rr, 0.0).to_dict()}
    for name, p in sources.items():
        trading[name] = trading_metrics(p, labels, rr, threshold).to_dict()
    replay0 = result.replays[modes[0]]
    return {
        "source": result.history.source,
        "outcomes": n,
        "modes": modes,
        "batch_versions": replay0.versions,
        "seconds": result.seconds,
        "history_span_s": result.history.span_s,
        "speedup": result.speedup,
        "segments": segments,
        "keys": by_key,
        "threshold": threshold,
        "trading": trading,
        "drift_alerts": replay0.alerts,
        "retrain_requests": len(replay0.retrain_requests),
        "dead_letters": dict(replay0.refused),
    }


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def format_report(doc: dict[str, Any], keys_shown: int = 10) -> str:
    """The report as tables for people."""
    speed = f", {doc['speedup']:,.0f}x the history's time span" if doc["speedup"] else ""
    versions = " -> ".join(v or "(none)" for v in doc["batch_versions"])
    seconds = max(doc["seconds"].values())
    lines = [
        f"backtest of {doc['outcomes']:,} outcomes from {doc['source']}; batch versions "
        f"{versions}; {seconds:.1f} s per mode ({doc['outcomes'] / seconds:,.0f} outcomes/s"
        f"{speed})",
        "",
        f"{'outcomes':<22} {'part':<16} {'n':>8} {'accuracy':>9} {'log loss':>9}",
    ]
    for segment in doc["segments"]:
        label = f"{segment['from']:,}-{segment['to']:,}"
        for name, m in segment["metrics"].items():
            lines.append(
                f"{label:<22} {name:<16} {m['n']:>8,} {_num(m['accuracy']):>9} "
                f"{_num(m['log_loss']):>9}"
            )
            label = ""
    keys = list(doc["keys"].items())
    if len(keys) > 1:
        lines += ["", f"per key (the {min(keys_shown, len(keys))} with most outcomes):"]
        for key, entry in keys[:keys_shown]:
            accs = "  ".join(
                f"{name} {_num(m['accuracy'])}/{_num(m['log_loss'])}"
                for name, m in entry["metrics"].items()
            )
            lines.append(f"  {key:<20} {entry['n']:>8,}  acc/logloss: {accs}")
    lines += [
        "",
        f"trades taken at score >= {doc['threshold']} (R multiples; Sharpe per trade):",
        f"{'signal':<18} {'trades':>8} {'win rate':>9} {'mean R':>8} {'total R':>9} "
        f"{'profit f.':>9} {'Sharpe':>7} {'max DD':>8}",
    ]
    for name, t in doc["trading"].items():
        lines.append(
            f"{name:<18} {t['trades']:>8,} {_num(t['win_rate']):>9} {_num(t['mean_r']):>8} "
            f"{_num(t['total_r'], 1):>9} {_num(t['profit_factor']):>9} {_num(t['sharpe']):>7} "
            f"{_num(t['max_drawdown'], 1):>8}"
        )
    alerts = doc["drift_alerts"]
    kinds = Counter(f"{a['kind']}/{a.get('source') or '-'} {a['event']}" for a in alerts)
    lines += [
        "",
        f"drift: {len(alerts)} alert message(s) would have been published"
        + (f" ({', '.join(f'{k} x{v}' for k, v in sorted(kinds.items()))})" if kinds else "")
        + f"; {doc['retrain_requests']} retrain request(s)",
    ]
    if doc["dead_letters"]:
        refused = ", ".join(f"{k} {v:,}" for k, v in sorted(doc["dead_letters"].items()))
        lines.append(f"dead letters: {refused}")
    return "\n".join(lines)


def run_backtest(settings: Settings, options: BacktestOptions) -> int:
    """The ``backtest`` command."""
    if options.from_file:
        history = file_history(settings, options.from_file, options.since_ms, options.until_ms)
    else:
        kafka = kafka_connection(settings)
        if kafka is None:
            raise BacktestError("--from-topic needs KAFKA_BOOTSTRAP_SERVERS")
        history = topic_history(settings, kafka, options.since_ms, options.until_ms)
    if options.no_batch:
        timeline = VersionTimeline.constant(None)
    elif options.batch_version:
        timeline = VersionTimeline.constant(options.batch_version)
    else:
        timeline = registry_timeline(settings)
    stored = set(model_store(settings).versions())
    for _, version in timeline.changes:
        if version is not None and version not in stored:
            raise BacktestError(f"batch version {version} is not in the model store")
    modes = options.modes or (settings.blend.mode,)
    total = len(history.records)
    last = [0.0]

    def progress(mode: str, done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 2.0 or done == total:
            print(f"  {mode}: {done:,} of {total:,} outcomes", file=sys.stderr, flush=True)
            last[0] = now

    result = backtest(settings, history, timeline, modes, progress)
    doc = report(result, options.threshold, options.segments)
    print(format_report(doc, options.keys_shown))
    if options.json_path:
        Path(options.json_path).write_bytes(
            orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
        )
    return 0
