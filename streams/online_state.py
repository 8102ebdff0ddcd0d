"""The online models of the input partitions this worker owns, restored from Redis on demand."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from models.blend import BlendFit
from models.codec import StateCodecError, decode_key_model, encode_key_model
from models.drift.config import DriftConfig
from models.keyed import KeyModel
from models.online import OnlineConfig
from models.state_store import PartitionWrite, StateStore

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
    #: When the applied offset last moved (monotonic), for the readiness "progressing" check.
    advanced_at: float = field(default_factory=time.monotonic)

    def has_changes(self) -> bool:
        """Whether a checkpoint would write anything for this partition."""
        return bool(self.dirty) or self.applied_offset != self.checkpointed_offset


@dataclass
class Snapshot:
    """What one checkpoint writes, captured at one instant (see :meth:`OnlineState.snapshot`).

    ``outbox`` names the outbox entries this checkpoint covers: once it is written, exactly
    these may be published (entries queued while the write is in flight are not in it, and
    publishing them before their own checkpoint would let a crash replay them a second time).
    """

    writes: dict[int, PartitionWrite]
    taken: dict[int, set[str]]
    outbox: list[OutboxDue] = field(default_factory=list)


@dataclass(frozen=True)
class OutboxDue:
    """The first ``count`` outbox entries of a key, covered by a written checkpoint."""

    loaded: PartitionModels
    model_key: str
    model: KeyModel
    count: int

    def entries(self) -> list[dict]:
        """The entries due (the oldest ``count``; newer ones wait for their checkpoint)."""
        return self.model.outbox[: self.count]


class OnlineState:
    """Per-partition model state: claimed from Redis on first use, checkpointed back atomically.

    ``is_assigned(partition)`` tells whether the consumer group gave this worker the partition;
    state is only claimed for assigned partitions, so a worker never fences the rightful owner
    because of events still buffered from before a rebalance. A partition whose checkpoint was
    refused (another worker claimed it) is not claimed again for ``fence_block_s`` or until the
    group assigns it to this worker again (:meth:`unblock`); whoever claims it resumes from the
    applied offset stored with its state (see :mod:`streams.checkpointing`).
    """

    def __init__(
        self,
        store: StateStore,
        config: OnlineConfig,
        is_assigned: Callable[[int], bool],
        drift: DriftConfig | None = None,
        on_quarantine: Callable[[], object] | None = None,
        fence_block_s: float = 10.0,
        blend: BlendFit | None = None,
    ) -> None:
        self._store = store
        self._on_quarantine = on_quarantine
        self.config = config
        self.drift = drift
        self.blend = blend
        self._is_assigned = is_assigned
        self._partitions: dict[int, PartitionModels] = {}
        self._claims: dict[int, asyncio.Task[PartitionModels]] = {}
        self._by_key: dict[str, KeyModel] = {}
        # Fenced partitions: not claimed again before this time (monotonic), so a worker that
        # has not yet heard of a rebalance does not fence the new owner back; after it, a
        # partition the group still gives us is claimed again (no wedge if Redis lost data).
        self._blocked: dict[int, float] = {}
        self._fence_block_s = fence_block_s
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
        blocked_until = self._blocked.get(partition)
        if blocked_until is not None:
            if time.monotonic() < blocked_until:
                return None
            del self._blocked[partition]
        if not self._is_assigned(partition):
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
                models[model_key] = decode_key_model(blob, self.config, self.drift, self.blend)
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
                models[model_key] = self.fresh_model()
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

    def fresh_model(self) -> KeyModel:
        """A key that has learned nothing yet, with this worker's configs."""
        return KeyModel.fresh(self.config, self.drift, self.blend)

    def model_or_new(self, loaded: PartitionModels, model_key: str) -> KeyModel:
        """The key's model in ``loaded``, created fresh on the key's first outcome."""
        key_model = loaded.models.get(model_key)
        if key_model is None:
            key_model = self.fresh_model()
            loaded.models[model_key] = key_model
            self._by_key[model_key] = key_model
        return key_model

    def note_outbox(self, partition: int, model_key: str) -> None:
        """The key has outbox entries to publish after the next checkpoint."""
        self._outbox.add((partition, model_key))

    def due_outbox(self, snapshot: Snapshot) -> list[OutboxDue]:
        """The outbox entries a written ``snapshot`` covers, in partitions still held here."""
        return [
            due
            for due in snapshot.outbox
            if self._partitions.get(due.loaded.partition) is due.loaded
            and due.loaded.models.get(due.model_key) is due.model
        ]

    def drain_outbox(self) -> list[dict]:
        """Take every queued outbox entry off its key (a backtest reports them instead of
        publishing them)."""
        drained: list[dict] = []
        for partition, model_key in sorted(self._outbox):
            loaded = self._partitions.get(partition)
            model = None if loaded is None else loaded.models.get(model_key)
            if model is not None:
                drained.extend(model.outbox)
                model.outbox.clear()
        self._outbox.clear()
        return drained

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

    @property
    def has_changes(self) -> bool:
        """Whether any loaded partition has state a checkpoint would write."""
        return any(m.has_changes() for m in self._partitions.values())

    def snapshot(self) -> Snapshot:
        """Capture what a checkpoint writes, synchronously (learning may go on meanwhile).

        The dirty set of each partition is taken (and emptied) here, so keys learned while the
        write is in flight are dirty again for the next checkpoint.
        """
        writes: dict[int, PartitionWrite] = {}
        taken: dict[int, set[str]] = {}
        for partition, loaded in self._partitions.items():
            if not loaded.has_changes():
                continue
            keys, loaded.dirty = loaded.dirty, set()
            taken[partition] = keys
            writes[partition] = PartitionWrite(
                epoch=loaded.epoch,
                applied_offset=loaded.applied_offset,
                states={k: encode_key_model(loaded.models[k]) for k in keys},
            )
        # Every key with outbox entries is dirty since it queued them, or was written before:
        # all of its entries are in this snapshot or an earlier checkpoint.
        outbox = []
        for partition, model_key in sorted(self._outbox):
            loaded = self._partitions.get(partition)
            model = None if loaded is None else loaded.models.get(model_key)
            if loaded is not None and model is not None and model.outbox:
                outbox.append(OutboxDue(loaded, model_key, model, len(model.outbox)))
        self._outbox.clear()
        return Snapshot(writes, taken, outbox)

    async def write(self, snapshot: Snapshot) -> set[int]:
        """Write a snapshot in one transaction; returns (and drops) the fenced partitions."""
        if not snapshot.writes:
            return set()
        fenced = await self._store.checkpoint(snapshot.writes)
        for partition, write in snapshot.writes.items():
            loaded = self._partitions.get(partition)
            if partition in fenced or loaded is None or loaded.epoch != write.epoch:
                continue
            loaded.checkpointed_offset = write.applied_offset
        if fenced:
            log.warning("partitions fenced by another worker", extra={"partitions": sorted(fenced)})
            self.drop(fenced)
            until = time.monotonic() + self._fence_block_s
            for partition in fenced:
                self._blocked[partition] = until
        return fenced

    def abandon(self, snapshot: Snapshot) -> None:
        """A snapshot was not written: its keys are dirty again, its outbox still pending."""
        for due in snapshot.outbox:
            self.note_outbox(due.loaded.partition, due.model_key)
        for partition, keys in snapshot.taken.items():
            loaded = self._partitions.get(partition)
            if loaded is not None and loaded.epoch == snapshot.writes[partition].epoch:
                loaded.dirty |= keys

    async def checkpoint(self) -> set[int]:
        """Snapshot and write in one go; returns the partitions refused (fenced) and dropped."""
        snapshot = self.snapshot()
        try:
            return await self.write(snapshot)
        except BaseException:
            self.abandon(snapshot)
            raise

    def unblock(self, partitions: Iterable[int]) -> None:
        """The group (re)assigned these partitions to this worker: they may be claimed again."""
        for partition in partitions:
            self._blocked.pop(partition, None)

    def key_summaries(self, offset: int = 0, limit: int | None = None) -> dict[str, dict]:
        """Summary numbers of the loaded keys, in key order, ``limit`` of them from ``offset``
        (a page of the status view: a worker may hold tens of thousands)."""
        keys = sorted(self._by_key)
        page = keys[offset:] if limit is None else keys[offset : offset + limit]
        return {key: self._by_key[key].summary() for key in page}
