"""Scale with keys and workers: throughput for 1, 100 and 10,000 model keys, memory and Redis
bytes per 1,000 keys, and two workers of one consumer group against one.

* keys: the learner's processor (all per-outcome work + Redis checkpoints, no broker) over the
  same 30,000 outcomes spread over 1, 100 or 10,000 keys, and Redis bytes per key from the
  checkpointed hashes; memory: the Python heap (tracemalloc) of 1,000 keys' live state;
* restore: CPU time to rebuild 1,000 keys' state from their checkpoints (as on assignment);
* workers: the full path (broker -> Faust -> Redis) over 150,000 outcomes with 4 partitions and
  100 keys, 1 worker vs 2 workers in one consumer group. On this 2-core machine the two workers
  share the cores with the broker and each other, so this shows the overhead of a group more
  than a speed-up.

    python -m bench.scale
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
import tracemalloc
from pathlib import Path

from app.composition import (
    build_engine,
    contract_spec,
    drift_config,
    online_config,
    stored_state,
)
from app.redis_connection import RedisConnection
from bench.harness import (
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
from models.codec import decode_key_model, encode_key_model
from models.keyed import KeyModel
from models.market import MarketSimulator
from streams.contracts import encode_message, record_key_of
from streams.producer import MessageProducer
from streams.records import InputRecord

N = 30_000
WORKER_OUTCOMES = 150_000  # long enough that group joins and claims are a small part


def by_keys(n_keys: int, redis: RedisConnection, store: Path) -> dict:
    """Processor throughput over ``n_keys`` keys, then memory and Redis bytes per key."""
    settings = isolated_settings(store, model={"key_field": "key"}, topics={"partitions": 4})
    spec = contract_spec(settings)
    keys = [f"K{i:05d}" for i in range(n_keys)]
    messages = MarketSimulator(seed=1, keys=keys).outcomes(N)
    records = [
        InputRecord(i % 4, i // 4, record_key_of(m, spec), encode_message(m))
        for i, m in enumerate(messages)
    ]
    records.sort(key=lambda r: (r.partition, r.offset))
    engine = build_engine(settings, redis, is_assigned=lambda p: True)

    elapsed = learn_in_process(engine, records, checkpoint_every=2000)
    learned = engine.state.key_count

    async def stored_bytes() -> int:
        async with stored_state(settings, redis) as states:
            return sum([await states.stored_bytes(p) for p in range(4)])

    redis_bytes = asyncio.run(stored_bytes())
    return {
        "keys": n_keys,
        "keys_learned": learned,
        "outcomes_per_s": N / elapsed,
        "redis_mib_per_1000_keys": redis_bytes / learned * 1000 / 2**20,
    }


def memory_per_1000_keys(settings_store: Path, outcomes_per_key: int = 50) -> float:
    """Python heap of 1,000 keys' state (learner, metrics, drift monitors) after some outcomes."""
    settings = isolated_settings(settings_store, model={"key_field": "key"})
    config, drift = online_config(settings), drift_config(settings)
    messages = MarketSimulator(seed=3).outcomes(outcomes_per_key)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    models = [KeyModel.fresh(config, drift) for _ in range(1000)]
    for model in models:
        for message in messages:
            won = message["label"] == 1
            p = model.learner.predict_proba(message["features"])
            model.metrics.update("online", won, p)
            model.metrics.update("blend", won, p)
            model.drift.update("k", message["features"], won, None, p, p, None)
            model.learner.learn(message["features"], won)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / 2**20


def restore_seconds_per_1000_keys(settings_store: Path, outcomes_per_key: int = 6_000) -> float:
    """CPU time to rebuild 1,000 keys from their checkpointed state (what a worker does for every
    key of a partition it is assigned), for keys old enough that their drift replay windows are
    full."""
    settings = isolated_settings(settings_store, model={"key_field": "key"})
    config, drift = online_config(settings), drift_config(settings)
    model = KeyModel.fresh(config, drift)
    for message in MarketSimulator(seed=4).outcomes(outcomes_per_key):
        won = message["label"] == 1
        p = model.learner.predict_proba(message["features"])
        model.metrics.update("online", won, p)
        model.drift.update("k", message["features"], won, p, p, p, None)
        model.learner.learn(message["features"], won)
    blob = encode_key_model(model)
    started = time.perf_counter()
    for _ in range(1000):
        decode_key_model(blob, config, drift)
    return time.perf_counter() - started


def by_workers(n_workers: int, endpoints, workdir: Path, engine: str) -> dict:
    settings = isolated_settings(
        workdir / f"store-{engine}-{n_workers}",
        model={"key_field": "key"},
        topics={"partitions": 4},
        processing={"engine": engine},
    )
    names = create_topics(settings, endpoints)
    keys = [f"SYM{i:03d}" for i in range(100)]
    producer = MessageProducer(endpoints.kafka, names, contract_spec(settings))
    producer.send_outcomes(MarketSimulator(seed=2, keys=keys).outcomes(WORKER_OUTCOMES))
    producer.close()
    workers = [
        start_worker(settings, endpoints, workdir / f"w-{engine}-{n_workers}-{i}.log")
        for i in range(n_workers)
    ]
    try:
        t0 = wait_until(lambda: applied_total(settings, endpoints) > 0, 120, "progress")
        first = applied_total(settings, endpoints)
        t1 = wait_until(
            lambda: applied_total(settings, endpoints) >= WORKER_OUTCOMES, 300, "all applied"
        )
    finally:
        for worker in workers:
            worker.stop()
    return {
        "engine": engine,
        "workers": n_workers,
        "outcomes_per_s": (WORKER_OUTCOMES - first) / (t1 - t0),
    }


def main() -> None:
    with infrastructure() as endpoints, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        keys = [by_keys(n, endpoints.redis, workdir / f"s{n}") for n in (1, 100, 10_000)]
        memory = memory_per_1000_keys(workdir / "mem")
        restore = restore_seconds_per_1000_keys(workdir / "restore")
        workers = [
            by_workers(n, endpoints, workdir, engine)
            for engine in ("faust", "aiokafka")
            for n in (1, 2)
        ]
    print(
        markdown(
            keys,
            [
                ("keys", "model keys"),
                ("outcomes_per_s", "outcomes/s (processor)"),
                ("redis_mib_per_1000_keys", "Redis MiB / 1k keys"),
            ],
        )
    )
    print(f"\nworker memory per 1,000 keys (Python heap, 50 outcomes each): {memory:.1f} MiB")
    print(f"restoring 1,000 keys with full drift windows: {restore:.2f} s of CPU\n")
    print(
        markdown(
            workers,
            [
                ("engine", "engine"),
                ("workers", "workers (1 group, 4 partitions)"),
                ("outcomes_per_s", "outcomes/s (full path)"),
            ],
        )
    )
    path = save(
        "scale",
        {
            "outcomes": N,
            "by_keys": keys,
            "memory_mib_per_1000_keys": memory,
            "restore_s_per_1000_keys": restore,
            "by_workers": workers,
        },
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
