"""What a retrain costs: read the window, train, gate, store; and what a worker reload costs.

For 100k and 1M outcomes x 20 features (synthetic, non-linear), each phase is timed in one run
on this machine and compared with the 60 s target (the requirement this replaced allowed
30 minutes). The window is read from a real topic on the embedded broker (or the one in
``KAFKA_BOOTSTRAP_SERVERS``). Then, on the same window, each model family (``--families``)
is trained and gated with its defaults: time, rounds, holdout log loss and AUC, artifact size,
reload time and the time to score a 500-row batch. Last, on the demo market (the synthetic
market of ``make demo``, ``--tuning-rows`` outcomes), each family is trained with its defaults
and with Optuna tuning (``--tuning-trials``, TPE + median pruner over 3 walk-forward folds),
and the tuned model's holdout log loss is compared with the defaults' on the same holdout rows
by the gate's paired bootstrap (gain, interval, one-sided p-value). Prints Markdown tables,
saves ``bench/results/retrain_cost.json``.

    python -m bench.retrain_cost [--rows 100000 1000000] [--families xgboost lightgbm ...]
        [--tuning-rows 50000] [--tuning-trials 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from app.composition import contract_spec
from app.embedded import EmbeddedInfrastructure
from config import load_settings
from config.settings import DEFAULT_SEARCH_SPACES
from models.adapters.directory_blobs import DirectoryBlobStore
from models.batch import load_batch_model
from models.families import FamilyUnavailableError, family, family_names
from models.gate import GateConfig, decide
from models.market import FEATURES as MARKET_FEATURES
from models.market import MarketSimulator
from models.retrain import challenge, realized_rr_of
from models.store import ModelStore
from models.training import TrainConfig, predict_frame
from models.tuning import TuningConfig, dimensions
from streams.kafka_connection import KafkaConnection
from streams.producer import MessageProducer
from streams.topics import TopicNames, ensure_topics
from streams.windows import read_window

N_FEATURES = 20
TARGET_S = 60.0
RESULTS = Path(__file__).parent / "results" / "retrain_cost.json"
FEATURES = tuple(f"f{i:02d}" for i in range(N_FEATURES))


def synthetic_outcomes(n: int, seed: int) -> pd.DataFrame:
    """Trades whose win probability is a non-linear function of 20 features."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_FEATURES))
    beta = rng.normal(0.0, 0.4, N_FEATURES)
    logit = x @ beta + 0.5 * np.sin(2 * x[:, 0]) + 0.3 * x[:, 1] * x[:, 2]
    won = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(x, columns=list(FEATURES))
    frame.insert(0, "realized_rr", np.where(won == 1, 1.5, -1.0))
    frame.insert(0, "label", won)
    frame.insert(0, "key", "global")
    frame.insert(0, "ts", 1_767_225_600_000 + np.arange(n) * 1000)
    return frame


def _messages(frame: pd.DataFrame):
    features = frame[list(FEATURES)].to_numpy().tolist()
    for i, (ts, label, rr) in enumerate(
        zip(
            frame["ts"].tolist(),
            frame["label"].tolist(),
            frame["realized_rr"].tolist(),
            strict=True,
        )
    ):
        yield {
            "outcome_id": f"b-{i}",
            "key": "global",
            "ts": ts,
            "features": dict(zip(FEATURES, features[i], strict=True)),
            "label": label,
            "realized_rr": rr,
        }


def measure(rows: int, kafka: KafkaConnection) -> dict[str, float]:
    settings = load_settings(environ={}).with_overrides(
        model={"features": FEATURES},
        topics={"outcomes": f"bench-{uuid.uuid4().hex[:6]}-outcomes", "partitions": 4},
    )
    names = TopicNames.from_settings(settings)
    ensure_topics(kafka, names, 4, 1)
    frame = synthetic_outcomes(rows, seed=rows)
    producer = MessageProducer(kafka, names, contract_spec(settings))
    started = time.perf_counter()
    producer.send_outcomes(_messages(frame))
    producer.close()
    produce_s = time.perf_counter() - started

    started = time.perf_counter()
    window = read_window(kafka, names.outcomes, contract_spec(settings), last_outcomes=rows)
    read_s = time.perf_counter() - started

    champion_frame = synthetic_outcomes(min(rows, 100_000), seed=rows + 1)
    store = ModelStore(DirectoryBlobStore(tempfile.mkdtemp(prefix="bench-store-")))
    first = challenge(champion_frame, FEATURES, None, TrainConfig(), GateConfig(), "bench", "c")
    champion = load_batch_model(store, first.trained.save_to(store, first.metadata), FEATURES)

    started = time.perf_counter()
    result = challenge(window, FEATURES, champion, TrainConfig(), GateConfig(), "bench", "bench")
    train_gate_s = time.perf_counter() - started
    gate_rows = result.decision.holdout_rows

    started = time.perf_counter()
    version = result.trained.save_to(store, result.metadata)
    save_s = time.perf_counter() - started

    reloads = []
    for _ in range(5):
        started = time.perf_counter()
        load_batch_model(store, version, FEATURES)
        reloads.append(time.perf_counter() - started)
    retrain_s = read_s + train_gate_s + save_s
    return {
        "rows": rows,
        "produce_s": produce_s,
        "read_window_s": read_s,
        "train_and_gate_s": train_gate_s,
        "save_s": save_s,
        "retrain_total_s": retrain_s,
        "vs_target": retrain_s / TARGET_S,
        "reload_median_s": float(np.median(reloads)),
        "best_iteration": result.metadata["hyperparameters"]["best_iteration"],
        "holdout_rows": gate_rows,
        "holdout_auc": result.decision.challenger["roc_auc"],
        "model_bytes": len(result.trained.model_bytes()),
        "families": [measure_family(name, window, champion, store) for name in FAMILIES],
    }


def measure_family(name: str, window: pd.DataFrame, champion, store: ModelStore) -> dict:
    """Train and gate one family on the window with its defaults; reload and batch scoring."""
    try:
        family(name).module()
    except FamilyUnavailableError as exc:
        return {"family": name, "skipped": str(exc)}
    config = TrainConfig(family=name)
    started = time.perf_counter()
    result = challenge(window, FEATURES, champion, config, GateConfig(), "bench", "bench")
    seconds = time.perf_counter() - started
    version = result.trained.save_to(store, result.metadata)
    reloads = []
    for _ in range(5):
        started = time.perf_counter()
        loaded = load_batch_model(store, version, FEATURES)
        reloads.append(time.perf_counter() - started)
    batch = window[list(FEATURES)].to_numpy(np.float64)[:500]
    scoring = []
    for _ in range(50):
        started = time.perf_counter()
        loaded.predict(batch)
        scoring.append(time.perf_counter() - started)
    return {
        "family": name,
        "train_and_gate_s": seconds,
        "rounds": result.trained.model.rounds,
        "holdout_log_loss": result.decision.challenger["log_loss"],
        "holdout_auc": result.decision.challenger["roc_auc"],
        "model_bytes": len(result.trained.model_bytes()),
        "reload_median_s": float(np.median(reloads)),
        "score_500_median_ms": float(np.median(scoring)) * 1000,
    }


FAMILIES: list[str] = list(family_names())


def measure_tuning(name: str, rows: int, trials: int) -> dict:
    """One family on the demo market: defaults vs ``trials`` Optuna trials, same holdout."""
    try:
        family(name).module()
    except FamilyUnavailableError as exc:
        return {"family": name, "skipped": str(exc)}
    frame = MarketSimulator(seed=rows).frame(rows)
    config = TrainConfig(family=name)
    gate = GateConfig()
    started = time.perf_counter()
    default = challenge(frame, MARKET_FEATURES, None, config, gate, "bench", "defaults")
    default_s = time.perf_counter() - started
    space = dimensions(DEFAULT_SEARCH_SPACES[name])
    started = time.perf_counter()
    tuned = challenge(
        frame,
        MARKET_FEATURES,
        None,
        config,
        gate,
        "bench",
        "tuned",
        tuning=TuningConfig(space, trials=trials, folds=3),
    )
    tuned_s = time.perf_counter() - started
    holdout = tuned.trained.split.holdout
    assert holdout["ts"].equals(default.trained.split.holdout["ts"])  # the same rows
    labels = holdout["label"].to_numpy(np.float64)
    p_tuned = predict_frame(tuned.trained.model, holdout, MARKET_FEATURES)
    p_default = predict_frame(default.trained.model, holdout, MARKET_FEATURES)
    verdict = decide(labels, p_tuned, p_default, realized_rr_of(holdout), gate, "defaults")
    summary = tuned.metadata["tuning"]
    return {
        "family": name,
        "rows": rows,
        "trials": summary["trials"],
        "adopted": summary["adopted"],
        "best_params": (summary["best"] or {}).get("params"),
        "cv_log_loss": {
            "defaults": summary["baseline"]["cv_log_loss"],
            "best": (summary["best"] or {}).get("cv_log_loss"),
        },
        "defaults_s": default_s,
        "tuned_s": tuned_s,
        "holdout_rows": len(holdout),
        "defaults_holdout_log_loss": verdict.champion["log_loss"],
        "tuned_holdout_log_loss": verdict.challenger["log_loss"],
        "gain": verdict.improvement,
        "gain_ci": [verdict.ci_low, verdict.ci_high],
        "p_value": verdict.p_value,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--families", nargs="*", default=list(family_names()))
    parser.add_argument("--tuning-rows", type=int, default=50_000)
    parser.add_argument("--tuning-trials", type=int, default=20)
    parser.add_argument("--tuning-families", nargs="*", default=list(family_names()))
    args = parser.parse_args()
    FAMILIES[:] = args.families
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    infra = EmbeddedInfrastructure(given, "redis://unused")
    endpoints = infra.start()
    try:
        results = [measure(rows, endpoints.kafka) for rows in args.rows]
    finally:
        infra.stop()
    tuning = [
        measure_tuning(name, args.tuning_rows, args.tuning_trials) for name in args.tuning_families
    ]
    print("| rows | read window | train + gate | save | retrain total | vs 60 s target | reload |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['rows']:,} | {r['read_window_s']:.1f} s | {r['train_and_gate_s']:.1f} s | "
            f"{r['save_s'] * 1000:.0f} ms | {r['retrain_total_s']:.1f} s | {r['vs_target']:.2f} | "
            f"{r['reload_median_s'] * 1000:.0f} ms |"
        )
    print(
        "\n| rows | family | train + gate | rounds | holdout log loss | holdout AUC | "
        "model | reload | score 500 rows |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for f in r["families"]:
            if "skipped" in f:
                print(f"| {r['rows']:,} | {f['family']} | skipped: {f['skipped']} |")
                continue
            print(
                f"| {r['rows']:,} | {f['family']} | {f['train_and_gate_s']:.1f} s | "
                f"{f['rounds']} | "
                f"{f['holdout_log_loss']:.4f} | {f['holdout_auc']:.4f} | "
                f"{f['model_bytes'] / 1024:.0f} KiB | {f['reload_median_s'] * 1000:.0f} ms | "
                f"{f['score_500_median_ms']:.2f} ms |"
            )
    print(
        "\n| family (demo market) | rows | trials (pruned) | defaults: time, holdout log loss | "
        "tuned: time, holdout log loss | gain [90% CI] | p-value |"
    )
    print("|---|---|---|---|---|---|---|")
    for t in tuning:
        if "skipped" in t:
            print(f"| {t['family']} | skipped: {t['skipped']} |")
            continue
        print(
            f"| {t['family']} | {t['rows']:,} | {t['trials']['total']} "
            f"({t['trials'].get('pruned', 0)}) | {t['defaults_s']:.1f} s, "
            f"{t['defaults_holdout_log_loss']:.4f} | {t['tuned_s']:.1f} s, "
            f"{t['tuned_holdout_log_loss']:.4f} | {t['gain']:+.4f} "
            f"[{t['gain_ci'][0]:+.4f}, {t['gain_ci'][1]:+.4f}] | {t['p_value']:.3f} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "retrain_cost",
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "features": N_FEATURES,
                "results": results,
                "tuning": tuning,
            },
            indent=2,
        )
    )
    print(f"\nsaved {RESULTS}")


if __name__ == "__main__":
    main()
