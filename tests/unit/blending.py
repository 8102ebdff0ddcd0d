"""Streams and engines shared by the tests of the fitted blend modes (optimized, stacked)."""

from __future__ import annotations

import random
from collections.abc import Iterator

from app.composition import memory_ports, train_config
from config import Settings
from models.blend import BlendFit
from models.codec import decode_key_model, encode_key_model
from models.keyed import KeyModel
from models.market import MarketSimulator
from models.online import OnlineConfig
from models.training import train_batch_model
from streams.engine import Ports
from streams.records import InputRecord
from tests.unit.engines import claimed, in_memory_engine


def one_part_informative(
    informative: str, n: int, seed: int = 1
) -> Iterator[tuple[float, float, bool]]:
    """(p_batch, p_online, won) where one part knows the win probability (``informative``:
    ``batch`` or ``online``) and the other is pure noise."""
    rng = random.Random(seed)
    for _ in range(n):
        truth = rng.random()
        won = rng.random() < truth
        sharp = min(max(truth + rng.gauss(0.0, 0.05), 0.01), 0.99)
        noise = rng.random()
        yield (sharp, noise, won) if informative == "batch" else (noise, sharp, won)


def straight_and_restored(
    config: BlendFit, rows: list[tuple[float, float, bool]], cut: int
) -> tuple[KeyModel, KeyModel]:
    """A key that observed every row, and one checkpointed (encoded, decoded) after ``cut``
    rows that then observed the rest."""
    straight = KeyModel.fresh(OnlineConfig(), blend=config)
    for row in rows:
        straight.blend.observe(*row)
    restored = KeyModel.fresh(OnlineConfig(), blend=config)
    for row in rows[:cut]:
        restored.blend.observe(*row)
    restored = decode_key_model(encode_key_model(restored), OnlineConfig(), blend=config)
    for row in rows[cut:]:
        restored.blend.observe(*row)
    return straight, restored


def momentum_model_ports(settings: Settings) -> Ports:
    """In-memory ports whose active batch model learned a momentum market (3,000 outcomes):
    stale on a mean-reverting stream."""
    trained = train_batch_model(
        MarketSimulator(seed=2).frame(3000), settings.model.features, train_config(settings)
    )
    ports = memory_ports(settings)
    ports.pointer.version = ports.model_store.save(trained.model_bytes(), trained.metadata)
    return ports


async def restarted_after_checkpoint(
    settings: Settings, version: str | None, outcomes: list[InputRecord], **groups: dict
) -> KeyModel:
    """Learn the first 1,234 outcomes, checkpoint, "crash", restart from the checkpoint and
    read again from outcome 1,000 (234 replayed): the key ``global`` as the restart leaves it."""
    ports = memory_ports(settings)
    ports.pointer.version = version
    first = await claimed(in_memory_engine(ports, **groups))
    await first.learner.process(outcomes[:1234])
    await first.state.checkpoint()
    await first.close()  # a crash after the checkpoint: what follows is read again
    second = await claimed(in_memory_engine(ports, **groups))
    result = await second.learner.process(outcomes[1000:])
    assert result.replayed == 234
    await second.close()
    return second.state.model("global")
