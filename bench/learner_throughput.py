"""Learner throughput: outcomes/s through the full path, beside the limits and the naive agent.

Same 150,000 outcomes (100 model keys, 4 partitions) for every row, measured in one run (fewer
left the batch engine's start-up -- group join, claims, new keys -- in the rate: 40,000 gave
14.7k/s where 150,000 gave 20.4k/s):

* bare River loop -- the River pipeline alone (predict + learn) in a Python loop: the limit;
* processor, no broker -- streamlearn's per-outcome work (decode + validate, three predictions,
  nine River metrics, drift monitors, learn) with Redis checkpoints, but no Kafka and no Faust;
  like the workers, with an active batch model (its predictions are scored prequentially and its
  reference feeds data and prediction drift), the product's steady state;
* streamlearn worker -- broker -> Faust agent -> processor -> Redis checkpoint (the product);
* naive Faust agent -- per-event learn, per-event Redis write, per-event ``await topic.send``.

    python -m bench.learner_throughput
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from river import compose, linear_model, preprocessing

from app.worker import worker_environment
from bench.harness import (
    Process,
    activate_batch_model,
    applied_total,
    create_topics,
    infrastructure,
    isolated_settings,
    learn_in_process,
    markdown,
    save,
    start_worker,
    wait_until,
)
from models.market import MarketSimulator
from streams.contracts import ContractSpec, encode_message, record_key_of
from streams.engine import Engine, contract_spec
from streams.producer import MessageProducer
from streams.reader import TopicReader
from streams.records import InputRecord

N, KEYS, PARTITIONS = 150_000, 100, 4


def outcomes() -> list[dict]:
    keys = [f"SYM{i:03d}" for i in range(KEYS)]
    return MarketSimulator(seed=42, keys=keys).outcomes(N)


def bare_river(messages: list[dict]) -> float:
    models: dict[str, compose.Pipeline] = {}
    started = time.perf_counter()
    for message in messages:
        model = models.get(message["key"])
        if model is None:
            model = models[message["key"]] = (
                preprocessing.StandardScaler() | linear_model.LogisticRegression()
            )
        model.predict_proba_one(message["features"])
        model.learn_one(message["features"], message["label"] == 1)
    return len(messages) / (time.perf_counter() - started)


def processor_only(messages: list[dict], redis_url: str, spec: ContractSpec, settings) -> float:
    activate_batch_model(settings, redis_url)
    engine = Engine.build(settings, redis_url, is_assigned=lambda p: True)
    if engine.load_active_model_now(redis_url) is not None:
        raise RuntimeError("the batch model did not load")
    records = [
        InputRecord(hash(m["key"]) % PARTITIONS, i, record_key_of(m, spec), encode_message(m))
        for i, m in enumerate(messages)
    ]

    return len(records) / learn_in_process(engine, records)


def _produce(settings, endpoints, messages) -> None:
    names = create_topics(settings, endpoints)
    producer = MessageProducer(endpoints.kafka_bootstrap, names, contract_spec(settings))
    producer.send_outcomes(messages)
    producer.close()


def full_path(messages: list[dict], endpoints, workdir: Path, engine: str) -> dict:
    settings = isolated_settings(
        workdir / f"store-{engine}",
        topics={"partitions": PARTITIONS},
        model={"key_field": "key"},
        processing={"engine": engine},
    )
    activate_batch_model(settings, endpoints.redis_url)
    _produce(settings, endpoints, messages)
    worker = start_worker(settings, endpoints, workdir / f"worker-{engine}.log")
    try:
        t0 = wait_until(lambda: applied_total(settings, endpoints) > 0, 120, "first checkpoint")
        first = applied_total(settings, endpoints)
        t1 = wait_until(lambda: applied_total(settings, endpoints) >= N, 300, "all applied")
        rss = worker.rss_mb()
    finally:
        worker.stop()
    return {"rate": (N - first) / (t1 - t0), "rss_mb": rss}


def naive(messages: list[dict], endpoints, workdir: Path) -> dict:
    settings = isolated_settings(
        workdir / "store-naive", topics={"partitions": PARTITIONS}, model={"key_field": "key"}
    )
    _produce(settings, endpoints, messages)
    env = worker_environment(settings, endpoints)
    agent = Process(["-m", "bench.baselines", "naive-learner"], env, workdir / "naive.log")
    reader = TopicReader(endpoints.kafka_bootstrap, settings.topics.signals)

    def done() -> int:
        return sum(reader.high_watermarks().values())

    try:
        t0 = wait_until(lambda: done() > 0, 120, "naive agent output", poll_s=0.2)
        first = done()
        t1 = wait_until(lambda: done() >= N, 600, "naive agent done", poll_s=0.2)
        rss = agent.rss_mb()
    finally:
        reader.close()
        agent.stop()
    return {"rate": (N - first) / (t1 - t0), "rss_mb": rss}


def main() -> None:
    messages = outcomes()
    with infrastructure() as endpoints, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        settings = isolated_settings(workdir / "store-p", model={"key_field": "key"})
        rows = [
            {"path": "bare River loop (predict + learn)", "rate": bare_river(messages)},
            {
                "path": "processor, no broker (all per-outcome work + Redis checkpoints)",
                "rate": processor_only(
                    messages, endpoints.redis_url, contract_spec(settings), settings
                ),
            },
        ]
        rows.append(
            {
                "path": "streamlearn worker, Faust agents (default)",
                **full_path(messages, endpoints, workdir, "agents"),
            }
        )
        rows.append(
            {
                "path": "streamlearn worker, batch engine",
                **full_path(messages, endpoints, workdir, "batch"),
            }
        )
        rows.append(
            {
                "path": "naive Faust agent (per-event Redis write + send)",
                **naive(messages, endpoints, workdir),
            }
        )
    bare, _, agents, batch, naive_rate = (row["rate"] for row in rows)
    for row in rows:
        row["vs_bare_loop"] = row["rate"] / bare
    print(
        markdown(
            rows,
            [
                ("path", "path"),
                ("rate", "outcomes/s"),
                ("vs_bare_loop", "vs bare River loop"),
                ("rss_mb", "RSS MiB"),
            ],
        )
    )
    for name, rate in (("Faust agents", agents), ("batch engine", batch)):
        print(
            f"worker with {name}: {rate / bare:.0%} of the bare River loop (goal 60%), "
            f"{rate / rows[1]['rate']:.0%} of the processor without a broker, "
            f"{rate / naive_rate:.1f}x the naive agent"
        )
    path = save(
        "learner_throughput", {"outcomes": N, "keys": KEYS, "partitions": PARTITIONS, "rows": rows}
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
