"""Drift detection quality on seeded synthetic streams with known change points.

For each scenario a batch XGBoost model is trained on 20,000 outcomes of the "before" concept;
the monitors then see 30,000 more "before" outcomes and 10,000 "after" outcomes (an abrupt
change). Reported per scenario: the batch model's accuracy before and after (the drop), the
detection delay of the concept alert in outcomes, missed changes, and false alarms (alerts of
any kind before the change). A separate run counts false alarms over 100,000 stationary
outcomes per generator. Targets: every change that drops the batch accuracy by >= 10 points is
detected within 1,000 outcomes; <= 1 false alarm per 100k stationary outcomes.

    python -m bench.drift_quality
"""

from __future__ import annotations

import itertools
import json
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from river.datasets import synth

from models.drift.config import DriftConfig
from models.drift.monitor import DriftMonitor, ModelReference
from models.market import FEATURES as MARKET_FEATURES
from models.market import MEAN_REVERSION, MOMENTUM, MarketSimulator
from models.training import predict_frame, train_batch_model

TRAIN, BEFORE, AFTER, STATIONARY = 20_000, 30_000, 10_000, 100_000
RESULTS = Path(__file__).parent / "results" / "drift_quality.json"
Rows = tuple[pd.DataFrame, list[str]]


def _river_rows(stream: Iterator, n: int) -> Rows:
    xs, ys = [], []
    for x, y in itertools.islice(stream, n):
        xs.append({f"x{k}": float(v) for k, v in x.items()})
        ys.append(int(y))
    frame = pd.DataFrame(xs)
    names = list(frame.columns)
    frame.insert(0, "label", ys)
    return frame, names


def _market_rows(sim: MarketSimulator, n: int) -> Rows:
    frame = sim.frame(n).drop(columns=["key", "realized_rr", "ts"])
    return frame, list(MARKET_FEATURES)


@dataclass(frozen=True)
class Scenario:
    """A concept before and after an abrupt change."""

    name: str
    generator: str
    before: Callable[[int], Callable[[int], Rows]]
    after: Callable[[int], Callable[[int], Rows]]


def _river(factory: Callable[[int], object]) -> Callable[[int], Callable[[int], Rows]]:
    def make(seed: int) -> Callable[[int], Rows]:
        stream = iter(factory(seed))
        return lambda n: _river_rows(stream, n)

    return make


def _market(regime) -> Callable[[int], Callable[[int], Rows]]:
    def make(seed: int) -> Callable[[int], Rows]:
        sim = MarketSimulator(seed=seed, regimes=(regime,))
        return lambda n: _market_rows(sim, n)

    return make


SCENARIOS = [
    Scenario(
        "market momentum -> mean reversion", "market", _market(MOMENTUM), _market(MEAN_REVERSION)
    ),
    Scenario(
        "SEA variant 0 -> 3",
        "SEA",
        _river(lambda s: synth.SEA(variant=0, seed=s)),
        _river(lambda s: synth.SEA(variant=3, seed=s + 1000)),
    ),
    Scenario(
        "SEA variant 2 -> 1",
        "SEA",
        _river(lambda s: synth.SEA(variant=2, seed=s)),
        _river(lambda s: synth.SEA(variant=1, seed=s + 1000)),
    ),
    Scenario(
        "Agrawal function 0 -> 2",
        "Agrawal",
        _river(lambda s: synth.Agrawal(classification_function=0, seed=s)),
        _river(lambda s: synth.Agrawal(classification_function=2, seed=s + 1000)),
    ),
    Scenario(
        "Agrawal function 1 -> 4",
        "Agrawal",
        _river(lambda s: synth.Agrawal(classification_function=1, seed=s)),
        _river(lambda s: synth.Agrawal(classification_function=4, seed=s + 1000)),
    ),
    Scenario(
        "Hyperplane A -> B (10 features)",
        "Hyperplane",
        _river(lambda s: synth.Hyperplane(seed=s, n_features=10)),
        _river(lambda s: synth.Hyperplane(seed=s + 1000, n_features=10)),
    ),
]
SEEDS = (1, 2, 3)


def run_monitor(frame: pd.DataFrame, names: list[str], p: np.ndarray, reference) -> list:
    monitor = DriftMonitor(DriftConfig(concept_sources=("batch",), retrain_on=()))
    labels = frame["label"].to_numpy()
    values = frame[names].to_numpy()
    events = []
    for i in range(len(frame)):
        features = dict(zip(names, values[i].tolist(), strict=True))
        found, _ = monitor.update(
            "k", features, bool(labels[i]), float(p[i]), None, None, reference
        )
        events += found
    return events


def evaluate(scenario: Scenario, seed: int) -> dict:
    before = scenario.before(seed)
    train_frame, names = before(TRAIN)
    trained = train_batch_model(train_frame.assign(ts=np.arange(TRAIN)), names)
    reference = ModelReference.from_metadata("bench", trained.metadata)
    pre, _ = before(BEFORE)
    post, _ = scenario.after(seed)(AFTER)
    stream = pd.concat([pre, post], ignore_index=True)
    p = predict_frame(trained.model, stream, names)
    correct = (p > 0.5) == stream["label"].to_numpy()
    events = run_monitor(stream, names, p, reference)
    alerts = [e for e in events if e.event == "alert"]
    false_alarms = [e for e in alerts if e.at_outcome <= BEFORE]
    concept_after = [e for e in alerts if e.kind == "concept" and e.at_outcome > BEFORE]
    drop = float(correct[:BEFORE].mean() - correct[BEFORE:].mean())
    return {
        "scenario": scenario.name,
        "seed": seed,
        "accuracy_before": float(correct[:BEFORE].mean()),
        "accuracy_after": float(correct[BEFORE:].mean()),
        "accuracy_drop_points": 100 * drop,
        "detected": bool(concept_after),
        "delay": concept_after[0].at_outcome - BEFORE if concept_after else None,
        "false_alarms_before_change": len(false_alarms),
        "other_alerts_after_change": sorted(
            {e.kind for e in alerts if e.at_outcome > BEFORE and e.kind != "concept"}
        ),
    }


def stationary(generator: str, make: Callable[[int], Callable[[int], Rows]], seed: int) -> dict:
    source = make(seed)
    train_frame, names = source(TRAIN)
    trained = train_batch_model(train_frame.assign(ts=np.arange(TRAIN)), names)
    reference = ModelReference.from_metadata("bench", trained.metadata)
    frame, _ = source(STATIONARY)
    p = predict_frame(trained.model, frame, names)
    alerts = [e for e in run_monitor(frame, names, p, reference) if e.event == "alert"]
    return {
        "generator": generator,
        "seed": seed,
        "outcomes": STATIONARY,
        "false_alarms": len(alerts),
        "by_kind": sorted(e.kind for e in alerts),
    }


def main() -> None:
    started = time.time()
    changes = [evaluate(s, seed) for s in SCENARIOS for seed in SEEDS]
    generators = {s.generator: s.before for s in SCENARIOS}
    quiet = [stationary(g, make, seed) for g, make in generators.items() for seed in (11, 12)]
    print(
        "| scenario | seed | batch accuracy before -> after | drop (pts) | delay | "
        "false alarms before | other alerts after |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in changes:
        delay = "missed" if r["delay"] is None else f"{r['delay']:,}"
        print(
            f"| {r['scenario']} | {r['seed']} | {r['accuracy_before']:.3f} -> "
            f"{r['accuracy_after']:.3f} | {r['accuracy_drop_points']:.1f} | {delay} | "
            f"{r['false_alarms_before_change']} | {', '.join(r['other_alerts_after_change'])} |"
        )
    big = [r for r in changes if r["accuracy_drop_points"] >= 10]
    within = [r for r in big if r["delay"] is not None and r["delay"] <= 1000]
    before_outcomes = len(changes) * BEFORE
    before_alarms = sum(r["false_alarms_before_change"] for r in changes)
    print("\n| generator | seed | stationary outcomes | false alarms |")
    print("|---|---|---|---|")
    for r in quiet:
        print(
            f"| {r['generator']} | {r['seed']} | {r['outcomes']:,} | {r['false_alarms']} "
            f"{' '.join(r['by_kind'])} |"
        )
    quiet_outcomes = sum(r["outcomes"] for r in quiet) + before_outcomes
    quiet_alarms = sum(r["false_alarms"] for r in quiet) + before_alarms
    per_100k = 100_000 * quiet_alarms / quiet_outcomes
    delays = [r["delay"] for r in big if r["delay"] is not None]
    summary = {
        "changes_with_drop_ge_10_points": len(big),
        "detected_within_1000": len(within),
        "missed_or_late": len(big) - len(within),
        "median_delay": float(np.median(delays)) if delays else None,
        "max_delay": max(delays) if delays else None,
        "stationary_outcomes": quiet_outcomes,
        "false_alarms": quiet_alarms,
        "false_alarms_per_100k": per_100k,
    }
    print(
        f"\nchanges dropping accuracy >= 10 points: {len(big)}, detected within 1,000 outcomes: "
        f"{len(within)} (median delay {summary['median_delay']}, max {summary['max_delay']}); "
        f"false alarms: {quiet_alarms} in {quiet_outcomes:,} stationary outcomes "
        f"= {per_100k:.2f} per 100k"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "drift_quality",
                "machine": platform.platform(),
                "seconds": round(time.time() - started, 1),
                "config": DriftConfig().__dict__,
                "summary": summary,
                "changes": changes,
                "stationary": quiet,
            },
            indent=2,
            default=list,
        )
    )
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
