"""What a retrain costs: read the window, train, gate, store; and what a worker reload costs.

For 100k and 1M outcomes x 20 features (synthetic, non-linear), each phase is timed in one run
on this machine and compared with the 60 s target (the requirement this replaced allowed
30 minutes). The window is read from a real topic on the embedded broker (or the one in
``KAFKA_BOOTSTRAP_SERVERS``). Then, on the same window, each model family (``--families``)
is trained and gated with its defaults: time, rounds, holdout log loss and AUC, artifact size,
reload time and the time to score a 500-row batch. Prints Markdown tables, saves
``bench/results/retrain_cost.json``.

    python -m bench.retrain_cost [--rows 100000 1000000] [--families xgboost lightgbm ...]
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
from models.adapters.directory_blobs import DirectoryBlobStore
from models.batch import load_batch_model
from models.families import FamilyUnavailableError, family, family_names
from models.gate import GateConfig
from models.retrain import challenge
from models.store import ModelStore
from models.training import TrainConfig
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--families", nargs="*", default=list(family_names()))
    args = parser.parse_args()
    FAMILIES[:] = args.families
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    infra = EmbeddedInfrastructure(given, "redis://unused")
    endpoints = infra.start()
    try:
        results = [measure(rows, endpoints.kafka) for rows in args.rows]
    finally:
        infra.stop()
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
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "retrain_cost",
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "features": N_FEATURES,
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nsaved {RESULTS}")


if __name__ == "__main__":
    main()
