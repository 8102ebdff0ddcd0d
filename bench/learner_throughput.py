"""Learner throughput: outcomes/s through the full path, beside the limits and the naive agent.

Same 150,000 outcomes (100 model keys, 4 partitions) for every row, measured in one run (fewer
left the aiokafka engine's start-up -- group join, claims, new keys -- in the rate: 40,000 gave
14.7k/s where 150,000 gave 20.4k/s):

* bare River loop -- the River pipeline alone (predict + learn) in a Python loop: the limit;
* processor, no broker -- streamlearn's per-outcome work (decode + validate, three predictions,
  metrics, drift monitors, learn) with Redis checkpoints, but no Kafka and no Faust; with an
  active batch model (its predictions are scored prequentially and its reference feeds data and
  prediction drift), the product's steady state;
* worker, aiokafka engine (the default) -- broker -> consumer loop -> processor -> Redis
  checkpoint, without a batch model (first start) and with one (steady state), drift on;
* worker, faust engine -- the same through Faust stream agents;
* naive Faust agent -- per-event learn, per-event Redis write, per-event ``await topic.send``.

    python -m bench.learner_throughput
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from river import compose, linear_model, preprocessing

from app.composition import active_version, build_engine, contract_spec
from app.redis_connection import RedisConnection
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
from streams.producer import MessageProducer
from streams.reader import TopicReader
from streams.records import InputRecord

N, KEYS, PARTITIONS = 150_000, 100, 4
#: Issue 10's throughput targets for the default engine, outcomes/s.
TARGETS = {"aiokafka-no-batch": 30_000, "aiokafka-batch": 20_000}


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


def processor_only(
    messages: list[dict], redis: RedisConnection, spec: ContractSpec, settings
) -> float:
    activate_batch_model(settings, redis)
    engine = build_engine(settings, redis, is_assigned=lambda p: True)
    if engine.load_model_now(active_version(settings, redis)) is not None:
        raise RuntimeError("the batch model did not load")
    records = [
        InputRecord(hash(m["key"]) % PARTITIONS, i, record_key_of(m, spec), encode_message(m))
        for i, m in enumerate(messages)
    ]

    return len(records) / learn_in_process(engine, records)


def _produce(settings, endpoints, messages) -> None:
    names = create_topics(settings, endpoints)
    producer = MessageProducer(endpoints.kafka, names, contract_spec(settings))
    producer.send_outcomes(messages)
    producer.close()


def full_path(
    messages: list[dict], endpoints, workdir: Path, engine: str, batch_model: bool = True
) -> dict:
    """A worker of ``engine`` draining the backlog (drift on, as by default)."""
    settings = isolated_settings(
        workdir / f"store-{engine}-{batch_model}",
        topics={"partitions": PARTITIONS},
        model={"key_field": "key"},
        processing={"engine": engine},
    )
    if batch_model:
        activate_batch_model(settings, endpoints.redis)
    _produce(settings, endpoints, messages)
    worker = start_worker(settings, endpoints, workdir / f"worker-{engine}-{batch_model}.log")
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
    reader = TopicReader(endpoints.kafka, settings.topics.signals)

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
                    messages, endpoints.redis, contract_spec(settings), settings
                ),
            },
        ]
        rows.append(
            {
                "path": "worker, aiokafka engine (default), no batch model, drift on",
                "target": TARGETS["aiokafka-no-batch"],
                **full_path(messages, endpoints, workdir, "aiokafka", batch_model=False),
            }
        )
        rows.append(
            {
                "path": "worker, aiokafka engine (default), batch model + drift (steady state)",
                "target": TARGETS["aiokafka-batch"],
                **full_path(messages, endpoints, workdir, "aiokafka"),
            }
        )
        rows.append(
            {
                "path": "worker, faust engine, batch model + drift",
                **full_path(messages, endpoints, workdir, "faust"),
            }
        )
        rows.append(
            {
                "path": "naive Faust agent (per-event Redis write + send)",
                **naive(messages, endpoints, workdir),
            }
        )
    bare, processor = rows[0]["rate"], rows[1]["rate"]
    naive_rate = rows[-1]["rate"]
    for row in rows:
        row["vs_bare_loop"] = row["rate"] / bare
        if "target" in row:
            row["meets_target"] = row["rate"] >= row["target"]
    print(
        markdown(
            rows,
            [
                ("path", "path"),
                ("rate", "outcomes/s"),
                ("target", "target /s"),
                ("vs_bare_loop", "vs bare River loop"),
                ("rss_mb", "RSS MiB"),
            ],
        )
    )
    for row in rows[2:-1]:
        print(
            f"{row['path']}: {row['rate'] / bare:.0%} of the bare River loop, "
            f"{row['rate'] / processor:.0%} of the processor without a broker, "
            f"{row['rate'] / naive_rate:.1f}x the naive agent"
        )
    path = save(
        "learner_throughput", {"outcomes": N, "keys": KEYS, "partitions": PARTITIONS, "rows": rows}
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
