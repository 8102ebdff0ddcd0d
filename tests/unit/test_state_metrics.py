"""The worker's Prometheus metrics on the in-memory twins: every family has the value the
state says it should (the scrape of a real worker is in tests/integration/test_drift_alerts)."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.composition import memory_ports, train_config
from config import load_settings
from models.market import MarketSimulator
from models.training import train_batch_model
from streams.contracts import encode_message
from streams.records import InputRecord
from streams.state_metrics import StateCollector
from tests.unit.engines import claimed, in_memory_engine, input_records


def samples(registry) -> dict[tuple[str, tuple], float]:
    """Every sample of a registry by (name, sorted labels)."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_every_family_reads_what_the_state_holds(tmp_path):
    settings = load_settings(environ={}).with_overrides(batch={"store": str(tmp_path)})
    ports = memory_ports(settings)
    sim = MarketSimulator(seed=5, change_points=[3000])
    trained = train_batch_model(sim.frame(2000), settings.model.features, train_config(settings))
    ports.pointer.version = ports.model_store.save(trained.model_bytes(), trained.metadata)

    async def scenario():
        engine = await claimed(in_memory_engine(ports, batch={"store": str(tmp_path)}))
        outcomes = input_records(sim.outcomes(2500))
        bad = InputRecord(0, 2500, b"global", b"{oops")
        await engine.learner.process([*outcomes, bad])
        requests = sim.requests(40)
        for request in requests:
            request["ts"] = 0  # the twin's clock says 123: 123 ms in flight
        await engine.scorer.score(
            [InputRecord(1, i, b"global", encode_message(r)) for i, r in enumerate(requests)]
        )
        status = {"highwaters": {0: 2501 + 7}, "request_highwaters": {1: 40 + 3, 2: 0}}
        engine.metrics.registry.register(StateCollector(engine, lambda: status, top_keys=5))
        return engine, samples(engine.metrics.registry)

    engine, found = asyncio.run(scenario())
    key = engine.state.model("global")
    topics = engine.topics
    for source, metrics in key.metrics.sources.items():
        assert metrics.n > 2000, source  # one key: the worker's totals are the key's
        labels = (("source", source),)
        assert found[("streamlearn_prequential_predictions_total", labels)] == metrics.n
        assert found[("streamlearn_prequential_correct_total", labels)] == metrics.correct
        accuracy = found[("streamlearn_prequential_accuracy_ratio", labels)]
        assert accuracy == metrics.correct / metrics.n and 0.5 < accuracy < 1
        assert (
            abs(found[("streamlearn_prequential_log_loss", labels)] - metrics.log_loss_mean) < 1e-9
        )
        by_key = (("model_key", "global"), ("source", source))
        assert found[("streamlearn_key_accuracy_ratio", by_key)] == accuracy
        assert 0 < found[("streamlearn_key_recent_accuracy_ratio", by_key)] <= 1
    assert found[("streamlearn_key_outcomes", (("model_key", "global"),))] == 2500
    for kind in ("concept", "data", "label"):
        assert (("streamlearn_drift_statistic", (("kind", kind), ("model_key", "global")))) in found
    open_now = sum(v for (n, _), v in found.items() if n == "streamlearn_drift_open_episodes")
    assert open_now == len(key.drift.open_kinds())
    lag = "streamlearn_consumer_lag"
    assert found[(lag, (("partition", "0"), ("topic", topics.outcomes)))] == 7
    assert found[(lag, (("partition", "1"), ("topic", topics.requests)))] == 3
    assert found[(lag, (("partition", "2"), ("topic", topics.requests)))] == 0
    info = [labels for (n, labels) in found if n == "streamlearn_batch_model_info"]
    assert info == [(("version", ports.pointer.version),)]
    letters = (("reason", "not_json"), ("source_topic", topics.outcomes))
    assert found[("streamlearn_dead_letters_total", letters)] == 1
    assert found[("streamlearn_signal_latency_seconds_count", ())] == 40
    assert found[("streamlearn_signal_latency_seconds_bucket", (("le", "0.25"),))] == 40
    assert found[("streamlearn_signal_latency_seconds_bucket", (("le", "0.1"),))] == 0
    assert found[("process_resident_memory_bytes", ())] > 0
    assert found[("streamlearn_outcomes_learned_total", ())] == 2500


def test_per_key_series_stay_within_top_keys():
    async def scenario():
        engine = await claimed(in_memory_engine(model={"key_field": "key"}))
        keys = tuple(f"K{i}" for i in range(12))
        messages = MarketSimulator(seed=3, keys=keys).outcomes(1200)
        records = [
            InputRecord(0, i, m["key"].encode(), encode_message(m)) for i, m in enumerate(messages)
        ]
        await engine.learner.process(records)
        engine.metrics.registry.register(StateCollector(engine, dict, top_keys=4))
        return engine, samples(engine.metrics.registry)

    engine, found = asyncio.run(scenario())
    shown = {dict(labels)["model_key"] for (n, labels) in found if n == "streamlearn_key_outcomes"}
    most = sorted(engine.state.partitions[0].models.items(), key=lambda item: -item[1].updates)[:4]
    assert len(shown) == 4
    assert min(found[("streamlearn_key_outcomes", (("model_key", k),))] for k in shown) == (
        most[-1][1].updates
    )
