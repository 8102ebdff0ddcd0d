"""Signal quality by blend mode: online, batch, fixed, optimized and stacked, on drifting streams.

Each stream is replayed through the worker's own learner with ``streamlearn backtest``'s code
(``app.backtest.backtest``: in process, in-memory state), once per blend mode, for several
seeds, each mode from the configured weights and from the version's fitted blend (``+fitted``:
``blend.start = fitted``; every version's blend is fitted as the retrainer fits it). The batch
model is XGBoost trained (``models.training``) on the stream's first
``HISTORY`` outcomes, the way the demo trains its first model; on the demo market a second
model, trained on the 8,000 outcomes before it, becomes active 3,000 outcomes after the regime
flip (the demo's retrain, at a fixed point). The River streams keep their first model, which
drift makes stale. Prints a Markdown table and saves ``bench/results/blend_quality.json``
(``blend_quality_decay.json`` with ``--decay-window-size`` / ``--decay-factor``).

Streams:

* ``demo market``: ``models.market`` momentum -> mean reversion at the middle;
* ``SEA abrupt``: River ``ConceptDriftStream`` of SEA variant 0 -> 2, 10% label noise;
* ``Agrawal abrupt``: River ``ConceptDriftStream`` of Agrawal function 0 -> 2;
* ``Hyperplane gradual``: River ``Hyperplane`` (5 of 10 features drifting, 5% noise);
* ``RandomRBF drift``: River ``RandomRBFDrift`` (25 moving centroids).

Goal (issue 12): the optimized or stacked blend has the best log loss of all five on every
stream, and its accuracy is never more than 0.5 points below the best single part.

    python -m bench.blend_quality [--seeds 3] [--outcomes 40000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
import pandas as pd
from river.datasets import synth

from app.backtest import MODES, VersionTimeline, backtest, frame_history, report
from app.composition import model_store, train_config
from app.train import blend_metadata
from bench.harness import save
from config import Settings, load_settings
from models.market import EPOCH_2026_MS, MarketSimulator
from models.stacking import STACK_INPUTS
from models.training import train_batch_model

HISTORY = 10_000
#: Every blend mode from the configured weights, then from each version's fitted blend.
VARIANTS = (*MODES, *(f"{mode}+fitted" for mode in MODES))
COLUMNS = ("online", "batch", *(f"blend {mode}" for mode in VARIANTS))
FITTED_BLENDS = tuple(c for c in COLUMNS if c not in ("online", "batch", "blend fixed"))
#: Realised R of a synthetic trade: won +1.5 R, lost -1 R.
WIN_R, LOSS_R = 1.5, -1.0


def _river_frame(stream: Iterator[tuple[dict, Any]], n: int) -> pd.DataFrame:
    rows, labels = [], []
    for x, y in stream:
        rows.append({f"x_{k}": float(v) for k, v in x.items()})
        labels.append(int(bool(y)))
        if len(rows) == n:
            break
    frame = pd.DataFrame.from_records(rows)
    frame.insert(0, "realized_rr", [WIN_R if y else LOSS_R for y in labels])
    frame.insert(0, "label", labels)
    frame.insert(0, "ts", EPOCH_2026_MS + 1000 * np.arange(n))
    return frame


def _abrupt(before: Any, after: Any, seed: int, n: int) -> pd.DataFrame:
    """``before``, then ``after`` from the middle of the replayed outcomes (1,000 wide)."""
    stream = synth.ConceptDriftStream(
        before, after, position=HISTORY + (n - HISTORY) // 2, width=1000, seed=seed
    )
    return _river_frame(iter(stream), n)


def _sea(seed: int, n: int) -> pd.DataFrame:
    before = synth.SEA(variant=0, noise=0.1, seed=seed)
    return _abrupt(before, synth.SEA(variant=2, noise=0.1, seed=seed + 100), seed, n)


def _agrawal(seed: int, n: int) -> pd.DataFrame:
    before = synth.Agrawal(classification_function=0, seed=seed)
    return _abrupt(before, synth.Agrawal(classification_function=2, seed=seed + 100), seed, n)


def _hyperplane(seed: int, n: int) -> pd.DataFrame:
    stream = synth.Hyperplane(
        seed=seed, n_features=10, n_drift_features=5, mag_change=0.001, noise_percentage=0.05
    )
    return _river_frame(iter(stream), n)


def _rbf(seed: int, n: int) -> pd.DataFrame:
    stream = synth.RandomRBFDrift(
        seed_model=seed,
        seed_sample=seed,
        n_classes=2,
        n_features=10,
        n_centroids=50,
        change_speed=0.0001,
        n_drift_centroids=25,
    )
    return _river_frame(iter(stream), n)


def _market(seed: int, n: int) -> pd.DataFrame:
    flip = HISTORY + (n - HISTORY) // 2
    return MarketSimulator(seed=seed, change_points=[flip]).frame(n)


STREAMS: dict[str, Callable[[int, int], pd.DataFrame]] = {
    "demo market": _market,
    "SEA abrupt": _sea,
    "Agrawal abrupt": _agrawal,
    "Hyperplane gradual": _hyperplane,
    "RandomRBF drift": _rbf,
}


def run_one(
    name: str,
    seed: int,
    n: int,
    store: Path,
    blend: dict[str, Any] | None = None,
    online: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One stream, one seed: train the batch model(s), replay every blend mode (``blend``:
    settings of the ``blend`` group other than the mode; ``online``: of the online learner)."""
    frame = STREAMS[name](seed, n)
    features = [c for c in frame.columns if c not in ("ts", "key", "label", "realized_rr")]
    settings: Settings = load_settings(environ={}).with_overrides(
        model={"features": features},
        batch={"store": str(store / f"{name}-{seed}")},
        blend=blend or {},
        online=online or {},
    )
    models = model_store(settings)
    config = train_config(settings)

    def stored(window: pd.DataFrame) -> str:
        """Train a version on ``window`` with its fitted blend, as the retrainer does."""
        trained = train_batch_model(window, features, config)
        return models.save(
            trained.model_bytes(), {**trained.metadata, "blend": blend_metadata(settings, trained)}
        )

    changes = [(-(2**62), stored(frame.iloc[:HISTORY]))]
    live = frame.iloc[HISTORY:].reset_index(drop=True)
    flip = (n - HISTORY) // 2
    if name == "demo market":  # the demo's retrain, at a fixed point
        at = flip + 3_000  # the demo promotes about 3,000 outcomes after the flip
        changes.append((int(live["ts"][at]), stored(live.iloc[at - 8000 : at])))
    history = frame_history(settings, live, f"{name} seed {seed}")
    result = backtest(settings, history, VersionTimeline(tuple(changes)), VARIANTS)
    doc = report(result, threshold=0.55, cuts=[flip])
    return {
        "segments": {
            label: segment["metrics"]
            for label, segment in zip(("before", "after", "whole"), doc["segments"], strict=True)
        },
        "seconds_per_mode": max(result.seconds.values()),
        "outcomes": doc["outcomes"],
    }


def summarise(runs: list[dict[str, Any]], segment: str) -> dict[str, dict[str, float]]:
    """Mean accuracy and log loss per column over seeds."""
    out = {}
    for column in COLUMNS:
        accs = [r["segments"][segment][column]["accuracy"] for r in runs]
        losses = [r["segments"][segment][column]["log_loss"] for r in runs]
        out[column] = {"accuracy": float(np.mean(accs)), "log_loss": float(np.mean(losses))}
    return out


def verdict(summary: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Whether a fitted blend (optimized or stacked, or any mode from the version's fitted
    blend) has the best log loss of all, and its accuracy is within 0.5 points of the best
    single part."""
    best_loss = min(COLUMNS, key=lambda c: summary[c]["log_loss"])
    best_part = max(summary[c]["accuracy"] for c in ("online", "batch"))
    fitted = min(FITTED_BLENDS, key=lambda c: summary[c]["log_loss"])
    gap = 100 * (best_part - summary[fitted]["accuracy"])
    return {
        "best_log_loss": best_loss,
        "best_fitted_blend": fitted,
        "accuracy_points_below_best_part": gap,
        "goal_met": best_loss in FITTED_BLENDS and gap <= 0.5,
    }


def main() -> None:
    """Run every stream and seed; print the table; save the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--outcomes", type=int, default=40_000, help="replayed per stream")
    parser.add_argument("--stack-inputs", choices=list(STACK_INPUTS))
    parser.add_argument("--stack-learning-rate", type=float)
    parser.add_argument("--stack-min-outcomes", type=int)
    parser.add_argument("--decay-window-size", type=int, help="online.window_size (decay on)")
    parser.add_argument("--decay-factor", type=float, help="online.decay_factor (decay on)")
    parser.add_argument(
        "--streams", nargs="+", choices=list(STREAMS), default=list(STREAMS), metavar="STREAM"
    )
    args = parser.parse_args()
    blend = {
        name: value
        for name in ("stack_inputs", "stack_learning_rate", "stack_min_outcomes")
        if (value := getattr(args, name)) is not None
    }
    online = {
        name: value
        for name, value in (
            ("window_size", args.decay_window_size),
            ("decay_factor", args.decay_factor),
        )
        if value is not None
    }
    n = HISTORY + args.outcomes
    results: dict[str, Any] = {}
    started = time.time()
    with TemporaryDirectory() as store:
        for name in args.streams:
            runs = [
                run_one(name, seed, n, Path(store), blend, online)
                for seed in range(1, args.seeds + 1)
            ]
            results[name] = {
                "whole": summarise(runs, "whole"),
                "after": summarise(runs, "after"),
                "seconds_per_mode": float(np.mean([r["seconds_per_mode"] for r in runs])),
            }
            results[name]["verdict"] = verdict(results[name]["whole"])
            print(f"{name}: done ({time.time() - started:.0f} s)", flush=True)
    print()
    header = " | ".join(f"{c} acc / loss" for c in COLUMNS)
    print(f"| stream | segment | {header} | goal |")
    print("|" + "---|" * (len(COLUMNS) + 3))
    for name, entry in results.items():
        for segment in ("whole", "after"):
            cells = " | ".join(
                f"{entry[segment][c]['accuracy']:.4f} / {entry[segment][c]['log_loss']:.4f}"
                for c in COLUMNS
            )
            goal = ""
            if segment == "whole":
                v = entry["verdict"]
                goal = (
                    f"{'met' if v['goal_met'] else 'NOT met'}: best loss {v['best_log_loss']}, "
                    f"{v['best_fitted_blend']} accuracy "
                    f"{-v['accuracy_points_below_best_part']:+.2f} pt vs best part"
                )
            print(f"| {name} | {segment} | {cells} | {goal} |")
    # With decay on, the results go next to (not over) the default run's.
    path = save(
        "blend_quality_decay" if online else "blend_quality",
        {
            "seeds": args.seeds,
            "outcomes_per_stream": args.outcomes,
            "history": HISTORY,
            "blend_settings": blend,
            "online_settings": online,
            "streams": results,
        },
    )
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
