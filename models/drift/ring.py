"""A compact fixed-size ring of recent values (numpy-backed: bytes per value, not Python objects).

A deque of Python floats costs ~32 bytes a value; drift monitors keep thousands per key, so at
10,000 keys the difference is gigabytes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class Ring:
    """The last ``size`` values appended, oldest first on read.

    >>> ring = Ring(3, np.uint8)
    >>> ring.extend([1, 0, 1, 1])
    >>> ring.values().tolist(), len(ring)
    ([0, 1, 1], 3)
    """

    def __init__(self, size: int, dtype: type) -> None:
        self._data = np.zeros(size, dtype=dtype)
        self._next = 0
        self._count = 0

    def append(self, value: float) -> None:
        """Add one value, dropping the oldest when full."""
        self._data[self._next] = value
        self._next = (self._next + 1) % len(self._data)
        if self._count < len(self._data):
            self._count += 1

    def extend(self, values: Iterable[float]) -> None:
        """Add values in order."""
        for value in values:
            self.append(value)

    def values(self) -> np.ndarray:
        """A copy of the held values, oldest first."""
        if self._count < len(self._data):
            return self._data[: self._count].copy()
        return np.concatenate([self._data[self._next :], self._data[: self._next]])

    def clear(self) -> None:
        """Forget everything."""
        self._next = self._count = 0

    def __len__(self) -> int:
        return self._count
