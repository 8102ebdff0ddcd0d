"""Learner and scorer processors on the in-memory twins (no broker, no Redis): replays, cold
starts, dead letters, the batch model a signal is scored with."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from app.composition import memory_ports
from config import load_settings
from models.market import MarketSimulator
from streams.contracts import encode_message
from streams.records import InputRecord
from tests.unit.engines import claimed, in_memory_engine, input_records


def test_replayed_offsets_are_skipped_after_restore():
    async def scenario():
        sim = MarketSimulator(seed=8)
        records = input_records(sim.outcomes(300))
        engine = await claimed(in_memory_engine())
        await engine.learner.process(records[:200])
        await engine.state.checkpoint()
        learned = engine.state.model("global").learner.weights
        await engine.close()

        restarted = await claimed(in_memory_engine(engine.ports))
        result = await restarted.learner.process(records[150:])  # 50 replays, then 100 new
        assert result.replayed == 50
        model = restarted.state.model("global")
        assert model.updates == 300
        assert learned != model.learner.weights
        await restarted.close()

    asyncio.run(scenario())


def test_scorer_cold_starts_say_what_is_missing():
    async def scenario():
        sim = MarketSimulator(seed=8)
        engine = await claimed(in_memory_engine(online={"min_updates": 10}))
        request = input_records(sim.requests(1))
        first = orjson.loads((await engine.scorer.score(request)).outgoing[0].value)
        assert (first["status"], first["score"]) == ("no_model", None)

        await engine.learner.process(input_records(sim.outcomes(10)))
        ready = orjson.loads((await engine.scorer.score(request)).outgoing[0].value)
        assert ready["status"] == "online_only"
        assert ready["score"] == ready["p_online"] and ready["online_updates"] == 10
        assert ready["batch_version"] is None
        await engine.close()

    asyncio.run(scenario())


def test_learner_dead_letters_advance_the_offset_and_keep_learning():
    async def scenario():
        sim = MarketSimulator(seed=8)
        engine = await claimed(in_memory_engine())
        good = sim.outcomes(2)
        records = [
            InputRecord(0, 0, b"global", encode_message(good[0])),
            InputRecord(0, 1, b"global", b"{oops"),
            InputRecord(0, 2, b"global", encode_message(good[1])),
        ]
        result = await engine.learner.process(records)
        assert len(result.outgoing) == 1
        letter = orjson.loads(result.outgoing[0].value)
        assert letter["source_offset"] == 1 and letter["failed_at"] == 123
        assert engine.state.partitions[0].applied_offset == 2
        assert engine.state.model("global").updates == 2
        await engine.close()

    asyncio.run(scenario())


def test_signals_name_the_pointer_version_and_say_when_the_pointer_is_unreadable(tmp_path):
    """The scorer and the learner follow the active-version pointer per micro-batch (here the
    in-memory twin); an unreadable pointer keeps the model held and marks signals degraded."""
    from app.composition import train_config
    from models.training import train_batch_model

    settings = load_settings(environ={}).with_overrides(batch={"store": str(tmp_path)})
    ports = memory_ports(settings)
    trained = train_batch_model(
        MarketSimulator(seed=2).frame(3000), settings.model.features, train_config(settings)
    )
    version = ports.model_store.save(trained.model_bytes(), trained.metadata)

    async def scenario():
        engine = await claimed(in_memory_engine(ports, batch={"store": str(tmp_path)}))
        request = input_records(MarketSimulator(seed=8).requests(1))
        cold = orjson.loads((await engine.scorer.score(request)).outgoing[0].value)
        assert (cold["batch_version"], cold["status"]) == (None, "no_model")
        ports.pointer.version = version
        warm = orjson.loads((await engine.scorer.score(request)).outgoing[0].value)
        assert warm["batch_version"] == version and warm["p_batch"] is not None
        assert warm.get("degraded") is None
        ports.pointer.fail = True
        degraded = orjson.loads((await engine.scorer.score(request)).outgoing[0].value)
        assert degraded["batch_version"] == version and "pointer" in degraded["degraded"]
        # The learner reads the same pointer per micro-batch: no outcome learned after an
        # activation is scored with the model it replaced (no waiting for a polling timer).
        ports.pointer.fail = False
        await engine.learner.process(input_records(MarketSimulator(seed=9).outcomes(40)))
        assert engine.state.model("global").metrics.sources["batch"].n == 40

    asyncio.run(scenario())


def test_new_keys_beyond_the_partition_limit_are_dead_letters_and_replays_agree():
    """Once a partition holds ``limits.max_keys_per_partition`` keys, the first outcome of any
    other key is a dead letter with the reason; known keys keep learning, and replaying the
    same offsets from the checkpoint makes the same decisions."""

    async def scenario():
        sim = MarketSimulator(seed=8, keys=("A", "B", "C", "D"))
        outcomes = sim.outcomes(200)
        records = [
            InputRecord(0, i, o["key"].encode(), encode_message(o)) for i, o in enumerate(outcomes)
        ]
        groups = {"model": {"key_field": "key"}, "limits": {"max_keys_per_partition": 3}}
        engine = await claimed(in_memory_engine(**groups))
        first = await engine.learner.process(records[:100])
        first_three = []
        for o in outcomes:
            if o["key"] not in first_three:
                first_three.append(o["key"])
        kept, refused = set(first_three[:3]), first_three[3]
        assert set(engine.state.partitions[0].models) == kept
        letters = [orjson.loads(r.value) for r in first.outgoing]
        expected = sum(1 for o in outcomes[:100] if o["key"] == refused)
        assert len(letters) == expected > 0
        assert all(
            letter["reason"].startswith("key_limit: partition 0 holds 3") for letter in letters
        )
        assert refused in letters[0]["reason"]
        assert engine.state.partitions[0].applied_offset == 99
        learned = {k: m.updates for k, m in engine.state.partitions[0].models.items()}
        assert sum(learned.values()) == 100 - expected
        await engine.state.checkpoint()
        await engine.close()

        again = await claimed(in_memory_engine(engine.ports, **groups))
        rest = await again.learner.process(records[50:])  # 50 replays, then 100 new
        assert rest.replayed == 50
        assert set(again.state.partitions[0].models) == kept
        assert len(rest.outgoing) == sum(1 for o in outcomes[100:] if o["key"] == refused)
        assert sum(m.updates for m in again.state.partitions[0].models.values()) == sum(
            1 for o in outcomes if o["key"] != refused
        )
        await again.close()

    asyncio.run(scenario())


def _request(request_id: str, ts: int, deadline_ms: int | None = None) -> dict:
    message = {"request_id": request_id, "key": "global", "ts": ts, "features": FEATURES}
    if deadline_ms is not None:
        message["deadline_ms"] = deadline_ms
    return message


FEATURES = dict.fromkeys(load_settings(environ={}).model.features, 0.5)


def test_requests_past_their_deadline_or_max_age_are_answered_expired_unscored():
    async def scenario():
        # The engine's clock says 123 ms.
        engine = await claimed(in_memory_engine(limits={"max_request_age_ms": 50}))
        requests = [
            _request("late", 100, deadline_ms=122),  # deadline passed 1 ms ago
            _request("on-time", 100, deadline_ms=123),  # deadline now: still scored
            _request("old", 72),  # 51 ms old, over the 50 ms limit
            _request("young", 73),  # 50 ms old
        ]
        result = await engine.scorer.score(input_records(requests))
        signals = {s["request_id"]: s for s in (orjson.loads(o.value) for o in result.outgoing)}
        assert result.signals == 4
        for name in ("late", "old"):
            signal = signals[name]
            assert signal["status"] == "expired"
            assert (signal["score"], signal["p_batch"], signal["p_online"]) == (None,) * 3
            assert (signal["w_batch"], signal["w_online"]) == (0.0, 0.0)
        assert signals["late"]["reason"] == "deadline_ms 122 passed 1 ms before scoring"
        assert "51 ms old, over limits.max_request_age_ms 50" in signals["old"]["reason"]
        assert signals["on-time"]["status"] == signals["young"]["status"] == "no_model"
        counted = engine.metrics.signals.labels("expired")._value.get()
        assert counted == 2
        await engine.close()

    asyncio.run(scenario())


def test_a_request_off_its_keys_partition_is_a_misrouted_dead_letter():
    from streams.partitioning import partition_for

    async def scenario():
        sim = MarketSimulator(seed=3, keys=("AAA", "BBB"))
        engine = in_memory_engine(model={"key_field": "key"})
        engine.placement.partitions = 4
        for partition in range(4):
            await engine.state.ensure(partition)
        home = {k: partition_for(k.encode(), range(4)) for k in ("AAA", "BBB", "NEW")}
        outcomes = [o for o in sim.outcomes(60) if o["key"] == "AAA"]
        records = [
            InputRecord(home["AAA"], i, b"AAA", encode_message(o)) for i, o in enumerate(outcomes)
        ]
        await engine.learner.process(records)
        request = {**sim.requests(1)[0], "key": "AAA"}
        away = (home["AAA"] + 1) % 4
        fresh = {**request, "key": "NEW", "request_id": "cold"}
        stray = (home["NEW"] + 1) % 4
        batch = [
            InputRecord(home["AAA"], 0, b"AAA", encode_message(request)),
            InputRecord(away, 0, b"AAA", encode_message({**request, "request_id": "away"})),
            InputRecord(home["NEW"], 1, b"NEW", encode_message(fresh)),
            InputRecord(stray, 1, b"NEW", encode_message({**fresh, "request_id": "stray"})),
        ]
        result = await engine.scorer.score(batch)
        signals = [orjson.loads(o.value) for o in result.outgoing if o.topic.endswith("signals")]
        letters = [orjson.loads(o.value) for o in result.outgoing if o.topic.endswith(".dlq")]
        # Its own partition: scored with its online model; a cold key at home: scored too.
        assert {s["request_id"]: s["online_updates"] for s in signals} == {
            request["request_id"]: len(outcomes),
            "cold": 0,
        }
        assert [(d["kind"], d["source_partition"]) for d in letters] == [
            ("misrouted", away),
            ("misrouted", stray),
        ]
        assert f"outcomes are learned on partition {home['AAA']}" in letters[0]["reason"]
        assert f"places it on partition {home['NEW']}" in letters[1]["reason"]
        misplaced = engine.metrics.keys_misplaced.labels("signal-requests")._value.get()
        assert misplaced == 2
        await engine.close()

    asyncio.run(scenario())


def test_an_outcome_key_off_the_default_partitioner_is_learned_and_reported(caplog):
    from streams.partitioning import partition_for

    async def scenario():
        sim = MarketSimulator(seed=3, keys=("AAA",))
        engine = in_memory_engine(model={"key_field": "key"})
        engine.placement.partitions = 4
        off = (partition_for(b"AAA", range(4)) + 1) % 4
        await engine.state.ensure(off)
        records = [
            InputRecord(off, i, b"AAA", encode_message(o)) for i, o in enumerate(sim.outcomes(5))
        ]
        await engine.learner.process(records)
        assert engine.state.model("AAA").updates == 5
        assert engine.metrics.keys_misplaced.labels("trade-outcomes")._value.get() == 1
        await engine.close()

    with caplog.at_level("WARNING"):
        asyncio.run(scenario())
    assert sum("key off its partition" in r.getMessage() for r in caplog.records) == 1


def test_with_signal_explain_each_signal_carries_its_top_contributions(tmp_path):
    import msgspec
    import numpy as np

    from app.composition import train_config
    from models.batch import feature_matrix
    from models.training import train_batch_model
    from streams.messages import SignalMessage

    settings = load_settings(environ={}).with_overrides(batch={"store": str(tmp_path)})
    ports = memory_ports(settings)
    trained = train_batch_model(
        MarketSimulator(seed=2).frame(3000), settings.model.features, train_config(settings)
    )
    ports.pointer.version = ports.model_store.save(trained.model_bytes(), trained.metadata)
    requests = MarketSimulator(seed=8).requests(20)

    async def scenario(**signal):
        engine = await claimed(
            in_memory_engine(ports, batch={"store": str(tmp_path)}, signal=signal)
        )
        result = await engine.scorer.score(input_records(requests))
        return [orjson.loads(record.value) for record in result.outgoing]

    plain = asyncio.run(scenario())
    assert all("explanation" not in signal for signal in plain)  # off: the message is as before
    explained = asyncio.run(scenario(explain=True, explain_top=2))
    features = settings.model.features
    rows = feature_matrix([r["features"] for r in requests], features)
    contributions = trained.model.contributions(rows)[:, : len(features)]
    for signal, row in zip(explained, contributions, strict=True):
        msgspec.json.decode(orjson.dumps(signal), type=SignalMessage)  # the schema allows it
        biggest = np.argsort(-np.abs(row))[:2]
        assert signal["explanation"] == pytest.approx(
            {features[j]: float(row[j]) for j in biggest}, abs=1e-6
        )
        assert signal["p_batch"] == next(
            p["p_batch"] for p in plain if p["request_id"] == signal["request_id"]
        )
