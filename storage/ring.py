"""Recent raw samples in memory (the ring buffer of the data manager), sorted by time, bounded by age."""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence

import numpy as np

from storage.records import FloatArray

# Rows older than the span are deleted in batches of at least this many, at most an eighth of the
# ring at a time: deleting from the front of the lists moves every row behind.
_MIN_DELETE = 64


class RawRing:
    """Recent raw samples in memory: times ascending, each with its field names and values.

    Times and each row's values are kept as C doubles (8 bytes a value, not a float object each):
    48 h of 10-s samples of some twenty fields is ~17k rows.
    """

    def __init__(self, hours: float) -> None:
        self.span_s = hours * 3600.0
        self._times = array("d")
        self._rows: list[tuple[tuple[str, ...], array[float]]] = []
        self._head = 0
        self._keys: dict[tuple[str, ...], tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._times) - self._head

    def append(self, t: float, fields: dict[str, float]) -> None:
        names = tuple(fields)
        names = self._keys.setdefault(names, names)  # one tuple of names shared by all rows alike
        row = (names, array("d", fields.values()))
        if self._times and t < self._times[-1]:
            index = bisect.bisect_right(self._times, t, lo=self._head)
            self._times.insert(index, t)
            self._rows.insert(index, row)
        else:
            self._times.append(t)
            self._rows.append(row)
        cutoff = self._times[-1] - self.span_s
        while self._head < len(self._times) and self._times[self._head] < cutoff:
            self._head += 1
        if self._head > max(_MIN_DELETE, len(self) // 8):
            del self._times[: self._head], self._rows[: self._head]
            self._head = 0

    @property
    def oldest(self) -> float | None:
        return self._times[self._head] if len(self) else None

    @property
    def newest(self) -> float | None:
        return self._times[-1] if len(self) else None

    def window(
        self, start_s: float, end_s: float, names: Sequence[str]
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        lo = bisect.bisect_left(self._times, start_s, lo=self._head)
        hi = bisect.bisect_left(self._times, end_s, lo=lo)
        times = np.array(self._times[lo:hi], dtype=np.float64)
        columns = {n: np.full(times.size, np.nan) for n in names}
        for i, (keys, values) in enumerate(self._rows[lo:hi]):
            for key, value in zip(keys, values, strict=True):
                column = columns.get(key)
                if column is not None:
                    column[i] = value
        return times, columns
