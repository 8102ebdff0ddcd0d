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
    >>> ring.append(0); ring.extend([1, 1])
    >>> ring.values().tolist()
    [0, 1, 1]
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

    def extend(self, values: Iterable[float] | np.ndarray) -> None:
        """Add values in order (one array write, not one per value)."""
        array = np.asarray(values if isinstance(values, np.ndarray) else list(values))
        size, count = len(self._data), len(array)
        if count == 0:
            return
        if count >= size:
            self._data[:] = array[-size:]
            self._next, self._count = 0, size
            return
        end = self._next + count
        if end <= size:
            self._data[self._next : end] = array
        else:
            split = size - self._next
            self._data[self._next :] = array[:split]
            self._data[: end - size] = array[split:]
        self._next = end % size
        self._count = min(size, self._count + count)

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
