"""The online models of the input partitions this worker owns, restored from Redis on demand."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from models.codec import StateCodecError, decode_key_model, encode_key_model
from models.drift.config import DriftConfig
from models.keyed import KeyModel
from models.online import OnlineConfig
from models.state_store import PartitionStateStore, PartitionWrite

log = logging.getLogger(__name__)


@dataclass
class PartitionModels:
    """Models of one input partition, its applied offset and what changed since the checkpoint."""

    partition: int
    epoch: int
    applied_offset: int
    models: dict[str, KeyModel] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    checkpointed_offset: int = -1

    def has_changes(self) -> bool:
        """Whether a checkpoint would write anything for this partition."""
        return bool(self.dirty) or self.applied_offset != self.checkpointed_offset


class OnlineState:
    """Per-partition model state: claimed from Redis on first use, checkpointed back atomically.

    ``is_assigned(partition)`` tells whether the consumer group gave this worker the partition;
    state is only claimed for assigned partitions, so a worker never fences the rightful owner
    because of events still buffered from before a rebalance. A partition whose checkpoint was
    refused (another worker claimed it) stays blocked until the group assigns it to this worker
    again (:meth:`unblock`): by then the consumer has been repositioned at Kafka's committed
    offset, which never passes Redis's applied offset, so nothing is skipped.
    """

    def __init__(
        self,
        store: PartitionStateStore,
        config: OnlineConfig,
        is_assigned: Callable[[int], bool],
        drift: DriftConfig | None = None,
        on_quarantine: Callable[[], object] | None = None,
    ) -> None:
        self._store = store
        self._on_quarantine = on_quarantine
        self.config = config
        self.drift = drift
        self._is_assigned = is_assigned
        self._partitions: dict[int, PartitionModels] = {}
        self._claims: dict[int, asyncio.Task[PartitionModels]] = {}
        self._by_key: dict[str, KeyModel] = {}
        self._blocked: set[int] = set()
        self._outbox: set[tuple[int, str]] = set()

    @property
    def partitions(self) -> dict[int, PartitionModels]:
        """Loaded partitions by number."""
        return self._partitions

    async def ensure(self, partition: int) -> PartitionModels | None:
        """The partition's models, claiming them from Redis first if needed; None if not ours."""
        loaded = self._partitions.get(partition)
        if loaded is not None:
            return loaded
        if partition in self._blocked or not self._is_assigned(partition):
            return None
        claim = self._claims.get(partition)
        if claim is None:
            claim = asyncio.ensure_future(self._claim(partition))
            self._claims[partition] = claim
        try:
            return await asyncio.shield(claim)
        finally:
            if claim.done():
                self._claims.pop(partition, None)

    async def _claim(self, partition: int) -> PartitionModels:
        snapshot = await self._store.claim(partition)
        models: dict[str, KeyModel] = {}
        quarantined: set[str] = set()
        for model_key, blob in snapshot.states.items():
            try:
                models[model_key] = decode_key_model(blob, self.config, self.drift)
            except StateCodecError as exc:
                # Never a crash loop: set the bad state aside (kept in Redis for a person to
                # look at), say so loudly, and let the key start again from nothing.
                await self._store.quarantine(partition, model_key, blob, str(exc))
                log.error(
                    "stored key state is invalid; quarantined, the key starts fresh",
                    extra={"partition": partition, "model_key": model_key, "error": str(exc)},
                )
                if self._on_quarantine is not None:
                    self._on_quarantine()
                models[model_key] = KeyModel.fresh(self.config, self.drift)
                quarantined.add(model_key)
        loaded = PartitionModels(
            partition=partition,
            epoch=snapshot.epoch,
            applied_offset=snapshot.applied_offset,
            models=models,
            dirty=quarantined,
            checkpointed_offset=snapshot.applied_offset,
        )
        self._partitions[partition] = loaded
        self._by_key.update(models)
        for model_key, model in models.items():
            if model.outbox:
                for entry in model.outbox:
                    entry["verify"] = True  # it may have been published before the restart
                self._outbox.add((partition, model_key))
        log.info(
            "partition claimed",
            extra={
                "partition": partition,
                "epoch": snapshot.epoch,
                "applied_offset": snapshot.applied_offset,
                "keys": len(models),
            },
        )
        return loaded

    @property
    def key_count(self) -> int:
        """How many model keys this worker holds."""
        return len(self._by_key)

    def model(self, model_key: str) -> KeyModel | None:
        """The loaded model of a key, if its partition is on this worker."""
        return self._by_key.get(model_key)

    def model_or_new(self, loaded: PartitionModels, model_key: str) -> KeyModel:
        """The key's model in ``loaded``, created fresh on the key's first outcome."""
        key_model = loaded.models.get(model_key)
        if key_model is None:
            key_model = KeyModel.fresh(self.config, self.drift)
            loaded.models[model_key] = key_model
            self._by_key[model_key] = key_model
        return key_model

    def note_outbox(self, partition: int, model_key: str) -> None:
        """The key has outbox entries to publish after the next checkpoint."""
        self._outbox.add((partition, model_key))

    def take_outbox(self) -> list[tuple[PartitionModels, str, KeyModel]]:
        """Keys with outbox entries, in loaded partitions (their entries are checkpointed)."""
        found = []
        for partition, model_key in sorted(self._outbox):
            loaded = self._partitions.get(partition)
            model = None if loaded is None else loaded.models.get(model_key)
            if loaded is not None and model is not None and model.outbox:
                found.append((loaded, model_key, model))
        self._outbox.clear()
        return found

    @property
    def has_outbox(self) -> bool:
        """Whether anything waits to be published."""
        return bool(self._outbox)

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget partitions (revoked or fenced); their state stays in Redis for the next owner."""
        for partition in partitions:
            loaded = self._partitions.pop(partition, None)
            if loaded is None:
                continue
            for model_key in loaded.models:
                self._by_key.pop(model_key, None)
                self._outbox.discard((partition, model_key))

    async def checkpoint(self) -> set[int]:
        """Write changed keys and applied offsets of all loaded partitions in one transaction.

        Returns the partitions refused because another worker claimed them; those are dropped.
        """
        changed = {p: m for p, m in self._partitions.items() if m.has_changes()}
        if not changed:
            return set()
        written = {p: set(m.dirty) for p, m in changed.items()}
        writes = {
            p: PartitionWrite(
                epoch=m.epoch,
                applied_offset=m.applied_offset,
                states={k: encode_key_model(m.models[k]) for k in written[p]},
            )
            for p, m in changed.items()
        }
        fenced = await self._store.checkpoint(writes)
        for partition, loaded in changed.items():
            if partition in fenced:
                continue
            loaded.dirty -= written[partition]
            loaded.checkpointed_offset = writes[partition].applied_offset
        if fenced:
            log.warning("partitions fenced by another worker", extra={"partitions": sorted(fenced)})
            self.drop(fenced)
            self._blocked |= fenced
        return fenced

    def unblock(self, partitions: Iterable[int]) -> None:
        """The group (re)assigned these partitions to this worker: they may be claimed again."""
        self._blocked -= set(partitions)

    def key_summaries(self) -> dict[str, dict]:
        """Summary numbers of every loaded key (for the status view)."""
        return {key: model.summary() for key, model in self._by_key.items()}
