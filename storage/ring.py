"""Recent raw samples in memory (the ring buffer of the data manager), sorted by time, bounded by age."""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence

import numpy as np

from storage.records import FloatArray

# Rows older than the span are deleted in batches of at least this many, at most an eighth of the
# ring at a time: deleting from the front of the arrays moves every row behind.
_MIN_DELETE = 64


class RawRing:
    """Recent raw samples in memory: times ascending, each with its field names and values.

    Everything is kept in flat arrays of C numbers, with no Python object per row: the times, the
    layout of each row (an index into the distinct tuples of field names seen) and all the rows'
    values one after another, in time order. 48 h of 10-s samples of some twenty fields (~17k rows)
    is about 3 MB, and a daemon that appends a row every poll for months does not fragment its
    small-object heap with them.
    """

    def __init__(self, hours: float) -> None:
        self.span_s = hours * 3600.0
        self._times = array("d")
        self._layout = array("i")
        self._values = array("d")
        self._head = 0
        self._layouts: list[tuple[str, ...]] = []
        self._layout_ids: dict[tuple[str, ...], int] = {}
        self._widths = array("q")  # number of fields of each layout

    def __len__(self) -> int:
        return len(self._times) - self._head

    def append(self, t: float, fields: dict[str, float]) -> None:
        names = tuple(fields)
        layout = self._layout_ids.get(names)
        if layout is None:
            layout = self._layout_ids[names] = len(self._layouts)
            self._layouts.append(names)
            self._widths.append(len(names))
        values = array("d", fields.values())
        if self._times and t < self._times[-1]:
            index = bisect.bisect_right(self._times, t, lo=self._head)
            start = self._value_count(index)
            self._times.insert(index, t)
            self._layout.insert(index, layout)
            self._values[start:start] = values
        else:
            self._times.append(t)
            self._layout.append(layout)
            self._values.extend(values)
        cutoff = self._times[-1] - self.span_s
        while self._head < len(self._times) and self._times[self._head] < cutoff:
            self._head += 1
        if self._head > max(_MIN_DELETE, len(self) // 8):
            count = self._value_count(self._head)
            del self._times[: self._head], self._layout[: self._head], self._values[:count]
            self._head = 0

    def _value_count(self, rows: int) -> int:
        """Values held by the first ``rows`` rows (where row ``rows``'s values start)."""
        layouts = np.array(self._layout[:rows], dtype=np.intp)
        return int(np.array(self._widths, dtype=np.int64)[layouts].sum())

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
        if hi == lo:
            return times, columns
        first = self._value_count(lo)
        layouts = np.array(self._layout[lo:hi], dtype=np.intp)
        widths = np.array(self._widths, dtype=np.int64)[layouts]
        starts = np.cumsum(widths) - widths
        values = np.array(self._values[first : first + int(widths.sum())], dtype=np.float64)
        for layout in np.unique(layouts):
            rows = np.flatnonzero(layouts == layout)
            for position, name in enumerate(self._layouts[layout]):
                column = columns.get(name)
                if column is not None:
                    column[rows] = values[starts[rows] + position]
        return times, columns
