"""Splitting a time-sorted window for validation, with purge and embargo measured in time.

* **purge**: training rows closing within ``purge_ms`` before a test period are dropped: a
  trade that closed just before the test started was open during it (its outcome and the test
  rows' share the same prices). Set it to the longest holding time of a trade.
* **embargo**: training rows within ``embargo_ms`` after a test period are dropped (serial
  correlation leaks the test period into what follows it). Walk-forward folds only ever train
  on the past, so the embargo only matters for the ``purged_kfold`` scheme.

Boundaries are timestamps, not row numbers: rows sharing a timestamp always fall on the same
side, and the gaps mean the same time whatever the outcome rate. Everything here works on
positions into the window (oldest first), so the same splits serve training, the gate's
holdout, cross-validation and tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Scheme = Literal["walk_forward", "purged_kfold"]


class SplitError(ValueError):
    """The window is too small for the split asked for."""


@dataclass(frozen=True)
class TimeSplit:
    """Positions of train | purge | validation | purge | holdout, oldest to newest."""

    train: np.ndarray
    validation: np.ndarray
    holdout: np.ndarray


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold: positions to train on and to test on."""

    number: int
    train: np.ndarray
    test: np.ndarray

    def describe(self, ts: np.ndarray) -> dict[str, Any]:
        """Rows and time bounds of the fold, for metadata."""
        return {
            "fold": self.number,
            "train_rows": len(self.train),
            "test_rows": len(self.test),
            "train_to_ts": int(ts[self.train].max()) if len(self.train) else None,
            "test_from_ts": int(ts[self.test[0]]),
            "test_to_ts": int(ts[self.test[-1]]),
        }


def _before(ts: np.ndarray, at: int, gap_ms: float) -> int:
    """How many rows close strictly before ``at - gap_ms`` (ts sorted)."""
    return int(np.searchsorted(ts, at - gap_ms, side="left"))


def time_split(
    ts: np.ndarray,
    validation_fraction: float,
    holdout_fraction: float,
    purge_ms: float,
    min_train_rows: int = 10,
) -> TimeSplit:
    """Cut a window (``ts`` sorted ascending) into train | validation | holdout by row shares,
    at timestamps, with ``purge_ms`` of rows dropped before the validation and the holdout."""
    ts = np.asarray(ts)
    n = len(ts)
    n_holdout = int(n * holdout_fraction)
    end = n
    holdout = np.arange(n, n)
    if n_holdout:
        start = int(np.searchsorted(ts, ts[n - n_holdout], side="left"))
        holdout = np.arange(start, n)
        end = _before(ts, ts[start], purge_ms)
    n_valid = max(1, int(n * validation_fraction))
    if end - n_valid < 1:
        raise SplitError(f"{n} rows leave nothing to train on once the holdout is purged")
    valid_start = int(np.searchsorted(ts[:end], ts[end - n_valid], side="left"))
    validation = np.arange(valid_start, end)
    train = np.arange(_before(ts[:valid_start], ts[valid_start], purge_ms))
    if len(train) < min_train_rows or len(validation) == 0:
        raise SplitError(
            f"{n} rows are too few: {len(train)} train, {len(validation)} validation and "
            f"{len(holdout)} holdout rows remain after purging {purge_ms / 1000:g}s before "
            "each part"
        )
    return TimeSplit(train=train, validation=validation, holdout=holdout)


def folds(
    ts: np.ndarray,
    count: int,
    purge_ms: float,
    embargo_ms: float = 0.0,
    scheme: Scheme = "walk_forward",
) -> list[Fold]:
    """Cross-validation folds over a window (``ts`` sorted ascending).

    ``walk_forward``: the window is cut into ``count + 1`` blocks of equal rows; fold k tests
    on block k and trains on every row that closed ``purge_ms`` before it (expanding).
    ``purged_kfold``: ``count`` blocks, each tested with every other row trained on, minus
    ``purge_ms`` before the block and ``embargo_ms`` after it. It uses the future to predict
    the past: only sound in a stationary market, which is why the retrainer walks forward.
    Folds with fewer than 10 training rows are left out.
    """
    ts = np.asarray(ts)
    n = len(ts)
    if count < 1:
        raise SplitError(f"need at least one fold, got {count}")
    blocks = count + 1 if scheme == "walk_forward" else count
    cuts = np.linspace(0, n, blocks + 1).astype(int)
    # move every cut to the first row of its timestamp so ties stay in one block
    cuts = np.array([int(np.searchsorted(ts, ts[c], side="left")) if c < n else n for c in cuts])
    result = []
    first_test = 1 if scheme == "walk_forward" else 0
    for number, block in enumerate(range(first_test, blocks), start=1):
        start, stop = int(cuts[block]), int(cuts[block + 1])
        if stop <= start:
            continue
        train = np.arange(_before(ts, ts[start], purge_ms))
        if scheme == "purged_kfold" and stop < n:
            after = int(np.searchsorted(ts, ts[stop - 1] + embargo_ms, side="right"))
            train = np.concatenate([train, np.arange(max(after, stop), n)])
        if len(train) < 10:
            continue
        result.append(Fold(number=number, train=train, test=np.arange(start, stop)))
    if not result:
        raise SplitError(f"{n} rows are too few for {count} folds")
    return result
