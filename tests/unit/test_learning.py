"""The learner processor against the in-memory state store: what is learned, refused, applied."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from river import compose, linear_model, optim, preprocessing

from app.composition import contract_spec, online_config
from config import load_settings
from models.adapters.directory_blobs import DirectoryBlobStore
from models.adapters.memory_pointer import MemoryPointer
from models.adapters.memory_state_store import MemoryStateStore
from models.blend import Blender
from models.market import MarketSimulator
from models.store import ModelStore
from streams.batch_follower import BatchModelFollower, BatchModelHolder
from streams.contracts import ContractSpec, encode_message
from streams.dead_letters import DeadLetterer
from streams.learning import OutcomeLearner
from streams.online_state import OnlineState
from streams.records import InputRecord
from streams.telemetry import EngineMetrics

SETTINGS = load_settings(environ={}).with_overrides(drift={"enabled": False})


def _learner(store: MemoryStateStore, spec: ContractSpec | None = None, **online) -> OutcomeLearner:
    settings = SETTINGS.with_overrides(online=online) if online else SETTINGS
    state = OnlineState(store, online_config(settings), is_assigned=lambda p: True)
    return OutcomeLearner(
        state,
        spec or contract_spec(settings),
        Blender(0.8, 0.2, 10),
        BatchModelFollower(
            BatchModelHolder(), MemoryPointer(), ModelStore(DirectoryBlobStore("unused")), ()
        ),
        DeadLetterer("outcomes", "outcomes.dlq", lambda: 1),
        EngineMetrics(),
    )


async def _claimed(learner: OutcomeLearner) -> OutcomeLearner:
    """Claim partition 0 (the engines do this on assignment; the processor never claims)."""
    await learner.state.ensure(0)
    return learner


def _records(messages, start: int = 0) -> list[InputRecord]:
    return [InputRecord(0, start + i, b"global", encode_message(m)) for i, m in enumerate(messages)]


def _river(outcomes) -> compose.Pipeline:
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.01))
    for outcome in outcomes:
        model.learn_one(outcome["features"], outcome["label"] == 1)
    return model


def _refused(learner: OutcomeLearner, reason: str) -> float:
    return learner._metrics.outcomes_refused.labels(reason)._value.get()


def test_a_repeated_outcome_id_is_learned_once_even_across_a_restore():
    async def scenario():
        store = MemoryStateStore()
        outcomes = MarketSimulator(seed=4).outcomes(300)
        # A producer retry re-sends 20 earlier outcomes (new offsets, same outcome_ids).
        stream = outcomes[:200] + outcomes[180:200] + outcomes[200:]
        learner = await _claimed(_learner(store))
        result = await learner.process(_records(stream[:210]))
        await learner.state.checkpoint()
        # A new worker takes over from the checkpoint: the window travels with the state.
        successor = await _claimed(_learner(store))
        result2 = await successor.process(_records(stream[210:], start=210))
        letters = [orjson.loads(r.value) for r in result.outgoing + result2.outgoing]
        assert len(letters) == 20
        assert all(letter["reason"].startswith("duplicate") for letter in letters)
        assert [letter["source_offset"] for letter in letters] == list(range(200, 220))
        assert _refused(learner, "duplicate") + _refused(successor, "duplicate") == 20
        assert successor.state.partitions[0].applied_offset == len(stream) - 1
        model = successor.state.model("global")
        assert model.updates == 300
        river = _river(outcomes)
        assert model.learner.weights == river["LogisticRegression"].weights

    asyncio.run(scenario())


def test_the_processor_never_claims_a_partition():
    async def scenario():
        store = MemoryStateStore()
        learner = _learner(store)
        outcomes = MarketSimulator(seed=4).outcomes(5)
        result = await learner.process(_records(outcomes))
        assert len(result.skipped_not_owned) == 5 and not result.applied
        assert store.hashes == {}  # no claim: only an engine claims, and then it seeks

    asyncio.run(scenario())


def test_deduplication_can_be_switched_off():
    async def scenario():
        outcomes = MarketSimulator(seed=4).outcomes(50)
        learner = await _claimed(_learner(MemoryStateStore(), dedupe_window=0))
        result = await learner.process(_records(outcomes + outcomes[:10]))
        assert result.outgoing == [] and learner.state.model("global").updates == 60

    asyncio.run(scenario())


def test_an_update_that_would_go_non_finite_is_refused_and_the_key_keeps_its_state():
    async def scenario():
        # Limits opened up so a huge feature passes the contract: the second line must hold.
        spec = ContractSpec(features=SETTINGS.model.features, max_abs_feature=float("inf"))
        learner = await _claimed(_learner(MemoryStateStore(), spec))
        outcomes = MarketSimulator(seed=5).outcomes(60)
        await learner.process(_records(outcomes[:50]))
        model = learner.state.model("global")
        before = (dict(model.learner.weights), model.learner.intercept, model.updates)
        huge = {**outcomes[50], "features": {**outcomes[50]["features"], "ret_1": 1e200}}
        result = await learner.process(_records([huge, *outcomes[51:]], start=50))
        assert len(result.outgoing) == 1
        letter = orjson.loads(result.outgoing[0].value)
        assert letter["reason"].startswith("non_finite") and letter["source_offset"] == 50
        assert _refused(learner, "non_finite") == 1
        assert learner.state.partitions[0].applied_offset == 59
        # Exactly River on the other 59 outcomes: the refused one left no trace.
        river = _river(outcomes[:50] + outcomes[51:])
        assert model.learner.weights == river["LogisticRegression"].weights
        assert model.updates == before[2] + 9

    asyncio.run(scenario())


def test_an_error_while_learning_costs_that_record_only():
    async def scenario():
        learner = await _claimed(_learner(MemoryStateStore()))
        outcomes = MarketSimulator(seed=6).outcomes(30)
        await learner.process(_records(outcomes[:10]))
        model = learner.state.model("global")
        real = model.learner.learn_checked
        calls = {"n": 0}

        def flaky(x, won, weight=1.0):
            calls["n"] += 1
            if calls["n"] == 5:
                raise RuntimeError("boom")
            return real(x, won, weight)

        model.learner.learn_checked = flaky
        result = await learner.process(_records(outcomes[10:], start=10))
        assert [orjson.loads(r.value)["source_offset"] for r in result.outgoing] == [14]
        assert (
            "internal error while learning: RuntimeError: boom"
            in orjson.loads(result.outgoing[0].value)["reason"]
        )
        assert learner.state.partitions[0].applied_offset == 29
        assert model.updates == 29

    asyncio.run(scenario())


def test_the_applied_offset_moves_only_with_the_effect():
    async def scenario():
        learner = await _claimed(_learner(MemoryStateStore()))
        outcomes = MarketSimulator(seed=7).outcomes(10)

        def explode(*args, **kwargs):
            raise KeyboardInterrupt  # not an Exception: escapes like a cancellation would

        await learner.process(_records(outcomes[:3]))
        learner.state.model("global").learner.learn_checked = explode
        with pytest.raises(KeyboardInterrupt):
            await learner.process(_records(outcomes[3:], start=3))
        # Nothing after offset 2 took effect, so nothing after it counts as applied.
        assert learner.state.partitions[0].applied_offset == 2

    asyncio.run(scenario())
