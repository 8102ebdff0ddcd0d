"""Following the active batch model: read the active pointer, load off the event loop, swap.

The scorer calls :meth:`BatchModelFollower.model_for_batch` at the start of every micro-batch:
one pointer read (a Redis GET in production) tells which version is active *now*, so the
version a signal names was active while its request was being processed. Versions are loaded
in a worker thread and kept in a small cache, so a rollback to a recent version swaps
instantly; a new version is usually preloaded already by the ``model-updates`` listener or the
polling timer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from models.batch import BatchModel, BatchModelError, load_batch_model
from models.model_source import ActivePointer
from models.store import ModelStore

log = logging.getLogger(__name__)


class BatchModelHolder:
    """The batch model currently used for scoring; replaced whole, never mutated."""

    def __init__(self) -> None:
        self.current: BatchModel | None = None

    @property
    def version(self) -> str | None:
        """Version id of the current model, or None."""
        return None if self.current is None else self.current.version


class BatchModelFollower:
    """Keeps a :class:`BatchModelHolder` on the version the registry pointer names.

    A version that fails validation (checksum, features, smoke prediction) is not retried for
    ``retry_after_s``; the worker keeps serving the model it had. A load (one per version, shared
    by every caller) that takes longer than ``load_wait_s`` -- a slow or unreachable model store
    -- goes on in the background while scoring goes on with the model held, flagged degraded.
    """

    def __init__(
        self,
        holder: BatchModelHolder,
        pointer: ActivePointer,
        store: ModelStore,
        features: Sequence[str],
        threads: int = 1,
        retry_after_s: float = 30.0,
        cache_size: int = 4,
        on_swap: Callable[[], object] | None = None,
        on_pointer_error: Callable[[], object] | None = None,
        pointer_timeout_s: float = 0.25,
        pointer_retry_s: float = 1.0,
        load_wait_s: float = 2.0,
    ) -> None:
        self.holder = holder
        self._pointer = pointer
        self._store = store
        self._features = tuple(features)
        self._threads = threads
        self._retry_after_s = retry_after_s
        self._cache: OrderedDict[str, BatchModel] = OrderedDict()
        self._cache_size = cache_size
        self._failed: dict[str, float] = {}
        self._loading: dict[str, asyncio.Task[BatchModel | None]] = {}
        self._wanted: str | None = None
        #: The staged version as of the last pointer read (None: none, or unreadable).
        self._staged: str | None = None
        self._load_wait = load_wait_s
        self.last_error: str | None = None
        self._on_swap = on_swap
        self._on_pointer_error = on_pointer_error
        self._pointer_timeout = pointer_timeout_s
        self._pointer_retry = pointer_retry_s
        self._pointer_down_until = 0.0
        self._pointer_error: str | None = None

    def remember(self, model: BatchModel) -> None:
        """Put a model loaded elsewhere (e.g. at start-up) into the cache and make it current."""
        self._cache[model.version] = model
        self.holder.current = model

    async def model_for_batch(self) -> tuple[BatchModel | None, str | None]:
        """The model to score the next micro-batch with, and why it may be stale (else None).

        Normally the active version as of now (one Redis read, which also tells the staged
        version for :meth:`shadow_for_batch`). Scoring never waits on Redis:
        if the pointer cannot be read within ``pointer_timeout_s`` the model already held is
        used and the reason is returned (signals carry it as ``degraded``); the pointer is not
        tried again for ``pointer_retry_s``, so an outage costs one short wait a second.
        """
        now = time.monotonic()
        self._staged = None
        if now < self._pointer_down_until:
            return self.holder.current, self._pointer_error
        try:
            wanted, self._staged = await asyncio.wait_for(
                self._pointer.versions(), self._pointer_timeout
            )
        except (TimeoutError, OSError) as exc:
            if self._on_pointer_error is not None:
                self._on_pointer_error()
            self._pointer_down_until = now + self._pointer_retry
            self._pointer_error = (
                f"active-version pointer unreadable ({type(exc).__name__}); scored with the "
                "batch model this worker holds"
            )
            return self.holder.current, self._pointer_error
        self._pointer_down_until = 0.0
        await self._follow(wanted, self._load_wait)
        if wanted is not None and wanted != self.holder.version and wanted in self._loading:
            return self.holder.current, (
                f"active version {wanted} still loading from the model store; scored with the "
                "batch model this worker holds"
            )
        return self.holder.current, None

    async def shadow_for_batch(self) -> BatchModel | None:
        """The staged version named by the last :meth:`model_for_batch`'s pointer read, for
        the learner to score in the shadow (never served), or None.

        No read of its own. Waits for a new staged version's load at most ``load_wait_s`` (as
        for the active one); an unreadable pointer, a version still loading after that (its
        load goes on in the background) or refused means no shadow scoring for this
        micro-batch. The staged version equal to the active one is not a shadow.
        """
        staged = self._staged
        if staged is None or staged == self.holder.version:
            return None
        return await self._model(staged, self._load_wait)

    async def sync(self) -> bool:
        """Make the active version current if it is not (waiting for its load); True when the
        model changed."""
        return await self._follow(await self._pointer.active())

    async def _follow(self, wanted: str | None, wait_s: float | None = None) -> bool:
        if wanted is None or wanted == self.holder.version:
            return False
        self._wanted = wanted
        model = await self._model(wanted, wait_s)
        # Swap only to the version still wanted: a slow load must not replace a newer one.
        if model is None or wanted == self.holder.version or wanted != self._wanted:
            return False
        previous = self.holder.version
        self.holder.current = model
        if self._on_swap is not None:
            self._on_swap()
        log.info("batch model swapped", extra={"version": wanted, "previous": previous})
        return True

    async def _model(self, version: str, wait_s: float | None) -> BatchModel | None:
        cached = self._cache.get(version)
        if cached is not None:
            self._cache.move_to_end(version)
            return cached
        failed_at = self._failed.get(version)
        if failed_at is not None and time.monotonic() - failed_at < self._retry_after_s:
            return None
        task = self._loading.get(version)
        if task is None:
            task = asyncio.ensure_future(self._load(version))
            self._loading[version] = task
            task.add_done_callback(lambda _, v=version: self._loading.pop(v, None))
        if wait_s is None:
            return await asyncio.shield(task)
        try:
            return await asyncio.wait_for(asyncio.shield(task), wait_s)
        except TimeoutError:
            return None  # still loading; the next micro-batch asks again

    async def _load(self, version: str) -> BatchModel | None:
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(
                None, load_batch_model, self._store, version, self._features, self._threads
            )
        except Exception as exc:  # refused (BatchModelError) or anything unforeseen: not fatal
            self._failed[version] = time.monotonic()
            self.last_error = str(exc) if isinstance(exc, BatchModelError) else repr(exc)
            log.error(
                "batch model refused; still serving the previous one",
                extra={
                    "version": version,
                    "serving": self.holder.version,
                    "error": self.last_error,
                },
            )
            return None
        self.last_error = None
        self._cache[version] = model
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return model
