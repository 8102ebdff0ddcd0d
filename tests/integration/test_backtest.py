"""A backtest of the outcomes topic gives the numbers the live worker measured."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from models.market import MarketSimulator


def test_a_topic_backtest_reproduces_the_worker_per_key(deploy, tmp_path):
    deployment = deploy(model={"key_field": "key"}, blend={"mode": "optimized", "refit_every": 50})
    deployment.create_topics()
    sim = MarketSimulator(seed=31, keys=("a", "b", "c"), change_points=[2000])
    history = Path(deployment.settings.batch.store).parent / "history.parquet"
    sim.frame(2000).to_parquet(history)
    trained = deployment.cli("train", "--from-file", str(history))
    assert trained.returncode == 0, trained.stderr
    producer = deployment.producer()
    producer.send_outcomes(sim.outcomes(4000))
    producer.send_raw(deployment.names.outcomes, b"a", b"not json")  # a dead letter
    producer.flush()
    deployment.worker(tmp_path).start()
    deployment.wait_for(
        lambda: sum(m.updates for m in deployment.key_models().values()) == 4000,
        90,
        "every outcome learned and checkpointed",
    )
    out = tmp_path / "backtest.json"
    replayed = deployment.cli(
        "backtest", "--from-topic", "--mode", "optimized", "--mode", "stacked", "--json", str(out)
    )
    assert replayed.returncode == 0, replayed.stderr
    doc = orjson.loads(out.read_bytes())
    assert doc["outcomes"] == 4000
    assert sum(doc["dead_letters"].values()) == 1
    live = deployment.key_models()
    assert set(doc["keys"]) == set(live) == {"a", "b", "c"}
    for key, model in live.items():
        measured = model.metrics.summary()
        for part, column in (
            ("online", "online"),
            ("batch", "batch"),
            ("blend", "blend optimized"),
        ):
            mine = doc["keys"][key]["metrics"][column]
            assert mine["n"] == measured[part]["n"], (key, part)
            assert mine["accuracy"] == pytest.approx(measured[part]["accuracy"], abs=1e-12)
            assert mine["log_loss"] == pytest.approx(measured[part]["log_loss"], rel=1e-9)
    assert "blend stacked" in doc["keys"]["a"]["metrics"]
