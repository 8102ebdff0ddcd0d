"""Per-outcome cost of the learner processor, on the in-memory twins (no broker, no Redis).

The product's own work per outcome -- decode and validate, three predictions, metrics, drift
monitors, dedupe, learn, checkpoint encoding -- without any I/O, so the number is the code's,
not the machine's services'. 30,000 outcomes of 100 keys, micro-batches of 500, a checkpoint
(every dirty key encoded) every 1,000 outcomes as the default cadence; best of three runs, each
configuration beside a bare River loop (predict + learn, same outcomes) measured in the same
run. The target (issue 10): <= 32 us an outcome with an active batch model and drift on.

    python -m bench.learner_cost
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from app.composition import memory_ports, model_configs, train_config
from bench.harness import markdown, save
from bench.learner_throughput import bare_river
from config import Settings, load_settings
from models.batch import load_batch_model
from models.market import MarketSimulator
from models.training import train_batch_model
from streams.contracts import encode_message
from streams.engine import Engine
from streams.records import InputRecord

N, KEYS, BATCH, CHECKPOINT_EVERY, RUNS = 30_000, 100, 500, 1_000, 3
TARGET_US = 32.0


def processor_us(
    settings: Settings, records: list[InputRecord], model_version: str | None
) -> float:
    """The learner processor over ``records`` with checkpoints to the in-memory state store."""

    async def run() -> float:
        ports = memory_ports(settings)
        engine = Engine.assemble(settings, model_configs(settings), ports, lambda p: True)
        if model_version is not None:
            engine.follower.remember(
                load_batch_model(ports.model_store, model_version, settings.model.features)
            )
        await engine.state.ensure(0)
        started = time.perf_counter()
        for start in range(0, len(records), BATCH):
            await engine.learner.process(records[start : start + BATCH])
            if start % CHECKPOINT_EVERY == 0:
                await engine.state.checkpoint()
        await engine.state.checkpoint()
        return (time.perf_counter() - started) / len(records) * 1e6

    return asyncio.run(run())


def main() -> None:
    keys = tuple(f"SYM{i:03d}" for i in range(KEYS))
    outcomes = MarketSimulator(seed=3, keys=keys).outcomes(N)
    records = [
        InputRecord(0, i, o["key"].encode(), encode_message(o)) for i, o in enumerate(outcomes)
    ]
    with tempfile.TemporaryDirectory() as store:
        base = load_settings(environ={}).with_overrides(
            model={"key_field": "key"}, batch={"store": str(store)}
        )
        trained = train_batch_model(
            MarketSimulator(seed=8).frame(20_000), base.model.features, train_config(base)
        )
        version = memory_ports(base).model_store.save(trained.model_bytes(), trained.metadata)
        configurations = [
            ("no batch model, drift off", False, False),
            ("no batch model, drift on", False, True),
            ("batch model, drift off", True, False),
            ("batch model, drift on (steady state)", True, True),
        ]
        rows = []
        for name, batch, drift in configurations:
            settings = base.with_overrides(drift={"enabled": drift})
            river = 1e6 / max(bare_river(outcomes) for _ in range(RUNS))
            cost = min(
                processor_us(settings, records, version if batch else None) for _ in range(RUNS)
            )
            rows.append(
                {
                    "configuration": name,
                    "us_per_outcome": cost,
                    "outcomes_per_s": 1e6 / cost,
                    "bare_river_us": river,
                    "vs_bare_river": cost / river,
                }
            )
    steady = rows[-1]["us_per_outcome"]
    print(
        markdown(
            rows,
            [
                ("configuration", "learner processor (in-memory store)"),
                ("us_per_outcome", "us / outcome"),
                ("outcomes_per_s", "outcomes/s"),
                ("bare_river_us", "bare River us (same run)"),
                ("vs_bare_river", "x bare River"),
            ],
        )
    )
    print(f"\nsteady state {steady:.1f} us per outcome; target <= {TARGET_US:.0f} us")
    path = save(
        "learner_cost",
        {
            "outcomes": N,
            "keys": KEYS,
            "micro_batch": BATCH,
            "checkpoint_every": CHECKPOINT_EVERY,
            "target_us": TARGET_US,
            "meets_target": steady <= TARGET_US,
            "rows": rows,
        },
    )
    print(f"saved {Path(path)}")


if __name__ == "__main__":
    main()
