"""Baselines the benchmarks compare streamlearn with, run as their own processes.

* ``naive-learner`` / ``naive-scorer``: the Faust agents a user would write first -- one event at
  a time, a Redis write per outcome, ``await topic.send`` per message, a one-row XGBoost call
  per request.
* ``aiokafka-scorer``: the Python client limit -- a hand-written aiokafka loop doing the
  scorer's work in batches (getmany -> orjson -> River predict + one batched XGBoost
  ``inplace_predict`` -> the worker's signal document -> ``create_batch``/``send_batch``), no
  framework, no validation, no state; its start-up heap is frozen as the worker's is.

    python -m bench.baselines naive-learner|naive-scorer|aiokafka-scorer

Configured like a worker (``KAFKA_BOOTSTRAP_SERVERS``, ``REDIS_URL``, ``STREAMLEARN_*``); the
XGBoost model file is ``BENCH_MODEL_PATH``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import xgboost as xgb
from river import compose, linear_model, preprocessing

from app.composition import kafka_connection
from config import Settings, load_settings
from streams.kafka_connection import KafkaConnection


def _kafka(settings: Settings) -> KafkaConnection:
    connection = kafka_connection(settings)
    if connection is None:
        sys.exit("KAFKA_BOOTSTRAP_SERVERS is not set")
    return connection


def _pipeline() -> compose.Pipeline:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def _booster() -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(os.environ["BENCH_MODEL_PATH"])
    booster.set_param({"nthread": 1})
    return booster


def run_naive(role: str) -> None:
    """The naive Faust agent for ``role`` (learner or scorer)."""
    import faust
    import redis.asyncio as aioredis

    from app.transport import StreamlearnApp

    settings = load_settings()
    features = list(settings.model.features)
    # Same bounded fetch wait as the worker (see app/transport.py), so latency compares work.
    app = StreamlearnApp(
        f"{settings.kafka.consumer_group}-naive-{role}",
        fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        **_kafka(settings).faust(),
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        datadir=f"/tmp/streamlearn-bench-naive-{os.getpid()}",
    )
    source = settings.topics.outcomes if role == "learner" else settings.topics.requests
    inputs = app.topic(source, key_serializer="raw", value_serializer="raw")
    outputs = app.topic(settings.topics.signals, key_serializer="raw", value_serializer="raw")
    models: dict[str, compose.Pipeline] = {}

    @app.agent(inputs)
    async def handle(stream: Any) -> None:
        client = aioredis.Redis.from_url(settings.redis.url)
        booster = _booster() if role == "scorer" else None
        async for value in stream:
            message = orjson.loads(value)
            key = message["key"]
            model = models.setdefault(key, _pipeline())
            x = message["features"]
            if role == "learner":
                model.predict_proba_one(x)
                model.learn_one(x, message["label"] == 1)
                weights = model["LogisticRegression"].weights
                await client.set(f"naive:{key}", orjson.dumps(weights))
                await outputs.send(key=key.encode(), value=b'{"learned": true}')
            else:
                p_online = model.predict_proba_one(x)[True]
                row = np.array([[x[f] for f in features]], dtype=np.float64)
                p_batch = float(booster.inplace_predict(row)[0])
                signal = {
                    "request_id": message["request_id"],
                    "key": key,
                    "score": 0.8 * p_batch + 0.2 * p_online,
                }
                await outputs.send(key=key.encode(), value=orjson.dumps(signal))

    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


async def run_aiokafka_scorer() -> None:
    """The hand-written batch loop: the fastest this work goes through a Python client."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    settings = load_settings()
    kafka = _kafka(settings)
    features = list(settings.model.features)
    booster = _booster()
    version = Path(os.environ["BENCH_MODEL_PATH"]).parent.name
    models: dict[str, compose.Pipeline] = {}
    consumer = AIOKafkaConsumer(
        settings.topics.requests,
        **kafka.client_options(),
        group_id=f"{settings.kafka.consumer_group}-aiokafka",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=1000,
        fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
    )
    producer = AIOKafkaProducer(**kafka.client_options(), linger_ms=1)
    await consumer.start()
    await producer.start()
    # The same start-up heap freeze as the worker (app/heap.py), so full garbage collections
    # (~90 ms over this process's imports) stall neither side of the comparison.
    gc.collect()
    gc.freeze()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=5, max_records=1000)
            for tp, records in batches.items():
                messages = [orjson.loads(r.value) for r in records]
                matrix = np.array(
                    [[m["features"][f] for f in features] for m in messages], dtype=np.float64
                )
                p_batch = booster.inplace_predict(matrix)
                batch = producer.create_batch()
                for message, pb in zip(messages, p_batch.tolist(), strict=True):
                    model = models.setdefault(message["key"], _pipeline())
                    p_online = model.predict_proba_one(message["features"])[True]
                    value = orjson.dumps(
                        {  # the worker's signal document, field for field (same bytes to move)
                            "request_id": message["request_id"],
                            "key": message["key"],
                            "model_key": message["key"],
                            "ts": message["ts"],
                            "score": 0.8 * pb + 0.2 * p_online,
                            "p_batch": pb,
                            "p_online": p_online,
                            "w_batch": 0.8,
                            "w_online": 0.2,
                            "batch_version": version,
                            "online_updates": 0,
                            "status": "ok",
                            "reason": None,
                            "scored_at": int(time.time() * 1000),
                            "degraded": None,
                        }
                    )
                    if (
                        batch.append(key=message["key"].encode(), value=value, timestamp=None)
                        is None
                    ):
                        await producer.send_batch(
                            batch, settings.topics.signals, partition=tp.partition
                        )
                        batch = producer.create_batch()
                        batch.append(key=message["key"].encode(), value=value, timestamp=None)
                await producer.send_batch(batch, settings.topics.signals, partition=tp.partition)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role in ("naive-learner", "naive-scorer"):
        run_naive(role.removeprefix("naive-"))
    elif role == "aiokafka-scorer":
        asyncio.run(run_aiokafka_scorer())
    else:
        sys.exit("usage: python -m bench.baselines naive-learner|naive-scorer|aiokafka-scorer")


if __name__ == "__main__":
    main()
